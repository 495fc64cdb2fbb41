//! Sizes and durations on the command line: `64K`, `1M`, `10s`, `500ms`, `2m`.
//!
//! One parser for the `asycamore` binary and the bench tools, so every flag that takes a size or a
//! time reads the same way. The flag types ([`Bytes`], [`Seconds`], [`Millis`]) implement
//! `FromStr`, which is all argh needs to use them as option types.
//!
//! - A size is a whole number of bytes with an optional suffix `K`, `M` or `G` (either case), each
//!   1024 times the one before — as nginx reads `client_max_body_size 1m`. `64K` is 65536.
//! - A duration is a number (fractions allowed: `1.5s`) with a suffix `ms`, `s`, `m` or `h`, or a
//!   bare number in the flag's historical unit: seconds for [`Seconds`] (so `--grace 30` still
//!   means 30 s), milliseconds for [`Millis`] (flags named `--millis`).
//!
//! ```
//! use asycamore::units::{Bytes, Seconds};
//! use std::time::Duration;
//!
//! assert_eq!("64K".parse::<Bytes>().unwrap().get(), 65536);
//! assert_eq!("500ms".parse::<Seconds>().unwrap().get(), Duration::from_millis(500));
//! assert_eq!("30".parse::<Seconds>().unwrap().get(), Duration::from_secs(30));
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Longest duration a flag accepts: far beyond any timeout, and well inside what `Instant`
/// arithmetic can add without overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Why a size or a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// Nothing was given.
    Empty,
    /// The number part is not a number (or a size has a fraction or a sign).
    BadNumber(String),
    /// The suffix is not one this kind of value knows.
    BadSuffix(String),
    /// The value does not fit (a size beyond `u64`, a duration beyond [`MAX_DURATION`]).
    TooLarge(String),
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitError::Empty => f.write_str("empty value"),
            UnitError::BadNumber(s) => write!(f, "{s:?} is not a number"),
            UnitError::BadSuffix(s) => write!(
                f,
                "{s:?}: unknown unit (sizes take K, M or G; durations ms, s, m or h)"
            ),
            UnitError::TooLarge(s) => write!(f, "{s:?} is too large"),
        }
    }
}

impl std::error::Error for UnitError {}

/// Splits `12.5ms` into `("12.5", "ms")`: the number is the longest prefix of digits and dots.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.split_at(end)
}

/// Parses a size: digits with an optional `K`, `M` or `G` (powers of 1024).
///
/// # Errors
/// A [`UnitError`] for anything else, including fractions (`1.5K`) and overflow.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let (number, suffix) = split_number(s);
    // Digits only: `u64::from_str` would take a leading `+`, and a fraction of a byte is nonsense.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UnitError::BadNumber(s.to_owned()));
    }
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return Err(UnitError::BadSuffix(s.to_owned())),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| UnitError::TooLarge(s.to_owned()))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| UnitError::TooLarge(s.to_owned()))
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h`, or a bare number counted in `bare`
/// (one second for most flags, one millisecond for `--millis` ones).
///
/// # Errors
/// A [`UnitError`] for anything else, and for more than [`MAX_DURATION`].
pub fn parse_duration(s: &str, bare: Duration) -> Result<Duration, UnitError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UnitError::Empty);
    }
    let (number, suffix) = split_number(s);
    let unit = match suffix {
        "" => bare,
        "ms" => Duration::from_millis(1),
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(UnitError::BadSuffix(s.to_owned())),
    };
    // `f64::from_str` also takes "inf", "NaN", "1e3" and signs; the split above has already
    // limited `number` to digits and dots, so only a well-formed decimal gets here.
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(UnitError::BadNumber(s.to_owned()));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| UnitError::BadNumber(s.to_owned()))?;
    let seconds = value * unit.as_secs_f64();
    if !seconds.is_finite() || seconds > MAX_DURATION.as_secs_f64() {
        return Err(UnitError::TooLarge(s.to_owned()));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A size flag: `65536`, `64K`, `1M`, `1G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Bytes {
    /// The number of bytes.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The number of bytes as a `usize`, saturating on a 32-bit target.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for Bytes {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Bytes, UnitError> {
        parse_size(s).map(Bytes)
    }
}

impl fmt::Display for Bytes {
    /// The largest suffix that divides the size exactly: `64K`, `1M`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
            if n != 0 && n.is_multiple_of(1 << shift) {
                return write!(f, "{}{suffix}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

/// A duration flag whose bare numbers are seconds: `30`, `0.5`, `10s`, `500ms`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Seconds {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Seconds, UnitError> {
        parse_duration(s, Duration::from_secs(1)).map(Seconds)
    }
}

/// A duration flag whose bare numbers are milliseconds (`--millis 1000`), also taking `1s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Millis(pub Duration);

impl Millis {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Millis {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Millis, UnitError> {
        parse_duration(s, Duration::from_millis(1)).map(Millis)
    }
}

/// Shows a duration the way the flags take it: `30s`, `500ms`, `1.5s`.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (input, want) in [
            ("0", 0),
            ("65536", 65536),
            ("64K", 65536),
            ("64k", 65536),
            ("1M", 1 << 20),
            ("1m", 1 << 20),
            ("1G", 1 << 30),
            (" 8K ", 8192),
            ("16777216G", 1 << 54),
        ] {
            assert_eq!(parse_size(input), Ok(want), "{input}");
        }
        for (input, want) in [
            ("", UnitError::Empty),
            ("K", UnitError::BadNumber("K".into())),
            ("+5", UnitError::BadNumber("+5".into())),
            ("-5", UnitError::BadNumber("-5".into())),
            ("1.5K", UnitError::BadNumber("1.5K".into())),
            ("5KB", UnitError::BadSuffix("5KB".into())),
            ("5T", UnitError::BadSuffix("5T".into())),
            ("1 K", UnitError::BadSuffix("1 K".into())),
            ("17179869184G", UnitError::TooLarge("17179869184G".into())),
            (
                "99999999999999999999",
                UnitError::TooLarge("99999999999999999999".into()),
            ),
        ] {
            assert_eq!(parse_size(input), Err(want), "{input}");
        }
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs(1);
        for (input, bare, want) in [
            ("10s", s, Duration::from_secs(10)),
            ("500ms", s, Duration::from_millis(500)),
            ("2m", s, Duration::from_secs(120)),
            ("1h", s, Duration::from_secs(3600)),
            ("1.5s", s, Duration::from_millis(1500)),
            ("30", s, Duration::from_secs(30)),
            ("0.5", s, Duration::from_millis(500)),
            ("0", s, Duration::ZERO),
            ("1000", Duration::from_millis(1), Duration::from_secs(1)),
            ("2s", Duration::from_millis(1), Duration::from_secs(2)),
        ] {
            assert_eq!(parse_duration(input, bare), Ok(want), "{input}");
        }
        for input in [
            "", "s", "-1", "+1", "1e3", "inf", "NaN", "1..2s", ".", "5d", "5 s",
        ] {
            assert!(parse_duration(input, s).is_err(), "{input} parsed");
        }
        assert!(matches!(
            parse_duration("9999999999999h", s),
            Err(UnitError::TooLarge(_))
        ));
    }

    #[test]
    fn flag_types_round_trip_through_display() {
        for text in ["64K", "1M", "1G", "1000", "0"] {
            assert_eq!(text.parse::<Bytes>().unwrap().to_string(), text);
        }
        for d in [
            Duration::from_secs(30),
            Duration::from_millis(500),
            Duration::from_millis(1500),
        ] {
            assert_eq!(format_duration(d).parse::<Seconds>().unwrap().get(), d);
        }
        assert_eq!(
            "250".parse::<Millis>().unwrap().get(),
            Duration::from_millis(250)
        );
    }
}
