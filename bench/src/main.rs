//! asycamore-bench: load and probing tools for asycamore, written on its own executor.
//!
//! One binary, one subcommand per tool; `asycamore-bench <tool> --help` describes each.
#![deny(missing_docs)]

mod echo;
mod parse;

use argh::FromArgs;
use asycamore_bench::cli::{ToolError, usage_line};

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
    Profiles(asycamore_bench::profiles::ProfilesArgs),
    Pending(asycamore_bench::pending::PendingArgs),
    Idle(asycamore_bench::idle::IdleArgs),
    OneRaw(asycamore_bench::oneraw::OneRawArgs),
    BulkFetch(asycamore_bench::bulkfetch::BulkFetchArgs),
    Ws(asycamore_bench::ws::WsArgs),
}

/// The names of the tools, as typed after `asycamore-bench`.
const TOOLS: [&str; 10] = [
    "echo",
    "parse",
    "load",
    "compare",
    "profiles",
    "pending",
    "idle",
    "oneraw",
    "bulkfetch",
    "ws",
];

fn main() {
    // argh takes a bare "-" for an unknown flag; the tools that read a file read stdin through
    // its path instead.
    let argv: Vec<String> = std::env::args()
        .map(|a| {
            if a == "-" {
                "/dev/stdin".to_string()
            } else {
                a
            }
        })
        .collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let tool = strs.get(1).copied().filter(|t| TOOLS.contains(t));
    let args = match Args::from_args(&strs[..1], &strs[1..]) {
        Ok(args) => args,
        Err(early) => {
            if early.status.is_ok() {
                println!("{}", early.output);
                std::process::exit(0);
            }
            // A bad flag: one line, naming the tool's own --help, and the usage status.
            eprintln!("{}", usage_line(tool, &early.output));
            std::process::exit(2);
        }
    };
    let result = match args.tool {
        Tool::Echo(a) => echo::run(a),
        Tool::Parse(a) => parse::run(a).map_err(ToolError::from),
        Tool::Load(a) => asycamore_bench::load::main(a),
        Tool::Compare(a) => asycamore_bench::compare::main(a),
        Tool::Profiles(a) => asycamore_bench::profiles::main(a),
        Tool::Pending(a) => asycamore_bench::pending::main(a),
        Tool::Idle(a) => asycamore_bench::idle::main(a),
        Tool::OneRaw(a) => asycamore_bench::oneraw::main(a),
        Tool::BulkFetch(a) => asycamore_bench::bulkfetch::main(a),
        Tool::Ws(a) => asycamore_bench::ws::main(a),
    };
    if let Err(e) = result {
        match (&e, tool) {
            (ToolError::Usage(message), _) => eprintln!("{}", usage_line(tool, message)),
            (ToolError::Failed(message), Some(tool)) => {
                eprintln!("asycamore-bench {tool}: {message}")
            }
            (ToolError::Failed(message), None) => eprintln!("asycamore-bench: {message}"),
        }
        std::process::exit(e.exit_code());
    }
}
