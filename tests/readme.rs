//! README's "Writing an app" walks through `src/apps/sleep.rs` in code blocks. They are cut
//! from the file (fragments, with the documentation left out), so they cannot be compiled as
//! they stand; this test keeps them from drifting from the code that is compiled: every token of
//! the walkthrough's blocks, in order, must appear in that order in the source file (comments
//! aside). A renamed state, a changed call or a reordered step in either fails it.
//!
//! The complete program of "A program of your own" is no fragment: it must be
//! `tests/kit/program.rs` exactly, which `tests/kit_program.rs` compiles and runs.

/// Tokens of Rust source: identifiers and numbers whole, every other visible character alone,
/// `//` comments (doc comments too) dropped.
fn tokens(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = match line.find("//") {
            // A `//` inside a string literal would be cut too; the sleep app has none.
            Some(at) => &line[..at],
            None => line,
        };
        let mut word = String::new();
        for c in code.chars() {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    out
}

/// The `rust` code blocks of the README section headed `heading` (up to the next heading of any
/// level), concatenated.
fn rust_blocks(readme: &str, heading: &str) -> String {
    let section = readme
        .split("\n#")
        .map(|s| s.trim_start_matches('#').trim_start())
        .find(|s| s.starts_with(heading))
        .expect("the section");
    let mut code = String::new();
    let mut inside = false;
    for line in section.lines() {
        if line.starts_with("```") {
            inside = !inside && line == "```rust";
            continue;
        }
        if inside {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// The first token of `part` that is not found, in order, in `whole`.
fn first_missing<'a>(part: &'a [String], whole: &[String]) -> Option<(usize, &'a str)> {
    let mut rest = whole.iter();
    for (i, token) in part.iter().enumerate() {
        if !rest.any(|t| t == token) {
            return Some((i, token));
        }
    }
    None
}

/// Every token of the `rust` blocks of README's section `heading`, in order, is in `source`
/// (the file at `path`), in that order.
#[track_caller]
fn follows(heading: &str, path: &str, source: &str, least: usize) {
    let readme = include_str!("../README.md");
    let walkthrough = tokens(&rust_blocks(readme, heading));
    assert!(
        walkthrough.len() > least,
        "the blocks of {heading:?} were found"
    );
    let source = tokens(source);
    if let Some((at, token)) = first_missing(&walkthrough, &source) {
        let context = walkthrough[at.saturating_sub(8)..=at].join(" ");
        panic!("README's {heading:?} has {token:?} (after: {context}) where {path} does not");
    }
}

#[test]
fn the_sleep_walkthrough_follows_the_source_in_order() {
    follows(
        "Writing an app",
        "src/apps/sleep.rs",
        include_str!("../src/apps/sleep.rs"),
        100,
    );
}

#[test]
fn the_websocket_walkthrough_follows_the_source_in_order() {
    follows(
        "Upgrades and WebSockets",
        "src/apps/ws.rs",
        include_str!("../src/apps/ws.rs"),
        50,
    );
}

#[test]
fn the_program_of_your_own_is_the_tested_file() {
    let readme = include_str!("../README.md");
    let block = rust_blocks(readme, "A program of your own");
    // `tests/kit_program.rs` compiles and runs this file; README must show it as it is.
    assert_eq!(
        block,
        include_str!("kit/program.rs"),
        "README's \"A program of your own\" differs from tests/kit/program.rs: copy the file into it"
    );
}

#[test]
fn the_check_catches_a_change() {
    let source = tokens("fn a() { let timer = Timer::after(d, cx); }");
    assert_eq!(
        first_missing(&tokens("let timer = Timer::after(d, cx);"), &source),
        None
    );
    // A renamed call, and the same tokens out of order.
    assert!(first_missing(&tokens("let timer = Timer::at(d);"), &source).is_some());
    assert!(first_missing(&tokens("cx, d"), &source).is_some());
}
