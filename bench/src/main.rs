//! asycamore-bench: load and probing tools for asycamore, written on its own executor.
//!
//! One binary, one subcommand per tool; `asycamore-bench <tool> --help` describes each.
#![deny(missing_docs)]

mod echo;
mod parse;

use argh::FromArgs;

/// Load and probing tools for asycamore.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    tool: Tool,
}

/// The tools.
#[derive(FromArgs)]
#[argh(subcommand)]
enum Tool {
    Echo(echo::EchoArgs),
    Parse(parse::ParseArgs),
    Load(asycamore_bench::load::LoadArgs),
    Compare(asycamore_bench::compare::CompareArgs),
}

fn main() {
    let args: Args = argh::from_env();
    let result = match args.tool {
        Tool::Echo(a) => echo::run(a),
        Tool::Parse(a) => parse::run(a),
        Tool::Load(a) => asycamore_bench::load::main(a),
        Tool::Compare(a) => asycamore_bench::compare::main(a),
    };
    if let Err(e) = result {
        eprintln!("asycamore-bench: {e}");
        std::process::exit(1);
    }
}
