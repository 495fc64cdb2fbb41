//! The `echo` benchmark (to be written).

use argh::FromArgs;

/// The echo benchmark.
#[derive(FromArgs)]
#[argh(subcommand, name = "echo")]
pub struct EchoArgs {}

/// Runs the benchmark.
pub fn run(_args: EchoArgs) -> Result<(), String> {
    Ok(())
}
