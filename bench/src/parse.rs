//! The `parse` benchmark (to be written).

use argh::FromArgs;

/// The parse benchmark.
#[derive(FromArgs)]
#[argh(subcommand, name = "parse")]
pub struct ParseArgs {}

/// Runs the benchmark.
pub fn run(_args: ParseArgs) -> Result<(), String> {
    Ok(())
}
