//! JSON text without a JSON library: the one piece every hand-written JSON answer needs, a
//! string literal with its escapes (RFC 8259 §7).
//!
//! ```
//! use asycamore::json::json_string;
//! assert_eq!(json_string("say \"hi\"\n"), r#""say \"hi\"\u000a""#);
//! ```

/// A JSON string literal for `s`.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
