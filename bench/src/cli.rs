//! What the tools share on the command line: a bad flag is a usage error (one line, exit 2,
//! naming the tool's own `--help`), a run that fails is exit 1.
//!
//! Sizes and durations are read by [`asycamore::units`], the same parser the server's flags
//! use: `--body-size 64K`, `-d 10s`, `--timeout 500ms`, and a bare number keeps the unit it
//! always had (seconds, or milliseconds for `--millis`).

use std::fmt;
use std::time::Duration;

use asycamore::units::Seconds;

/// Why a tool did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The flags do not make a run: exit status 2.
    Usage(String),
    /// The run itself failed: exit status 1.
    Failed(String),
}

impl ToolError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Usage(_) => 2,
            ToolError::Failed(_) => 1,
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) | ToolError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<String> for ToolError {
    /// A plain message is a failed run; usage errors are made explicitly.
    fn from(message: String) -> ToolError {
        ToolError::Failed(message)
    }
}

/// The one line a usage error prints: the message (all of argh's lines joined) and where to
/// read about the flags — the tool's own `--help` when there is a tool.
pub fn usage_line(tool: Option<&str>, message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = parts.join(" ");
    let message = message.trim_end_matches('.');
    match tool {
        Some(tool) => format!(
            "asycamore-bench {tool}: {message}. Run asycamore-bench {tool} --help for the flags."
        ),
        None => format!("asycamore-bench: {message}. Run asycamore-bench --help for the tools."),
    }
}

/// A duration flag that must be above zero.
///
/// # Errors
/// A usage error naming `flag`.
pub fn positive(flag: &str, value: Seconds) -> Result<Duration, ToolError> {
    if value.get().is_zero() {
        Err(ToolError::Usage(format!("{flag} must be above 0")))
    } else {
        Ok(value.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_error_is_one_line_naming_the_tools_help() {
        let line = usage_line(
            Some("load"),
            "Required positional arguments not provided:\n    url\n",
        );
        assert_eq!(
            line,
            "asycamore-bench load: Required positional arguments not provided: url. Run asycamore-bench load --help for the flags."
        );
        assert!(usage_line(None, "Unrecognized argument: x").ends_with("--help for the tools."));
    }
}
