//! The `asycamore` binary: serves the demo applications over HTTP/1.1.
//!
//! `asycamore --bind 127.0.0.1:8080` serves `/` (hello), `/echo` and `/upload`;
//! `asycamore --app hello` serves one application at every path (for benchmarks).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use argh::FromArgs;

use asycamore::apps::{Echo, Hello, Upload};
use asycamore::config::{self, Config};
use asycamore::detect::Limits;
use asycamore::middleware::{AccessLog, Router};
use asycamore::server::{self, Server};
use asycamore::service::App;

/// asycamore: an HTTP/1.1 server built from hand-written coroutines over poll(2).
#[derive(FromArgs)]
struct Args {
    /// address to listen on (default 127.0.0.1:8080)
    #[argh(option, default = "SocketAddr::from(([127, 0, 0, 1], 8080))")]
    bind: SocketAddr,

    /// serve one application at every path: hello, echo or upload (default: all of them, routed
    /// by path: / hello, /echo, /upload)
    #[argh(option)]
    app: Option<String>,

    /// listen backlog (default 4096)
    #[argh(option, default = "server::BACKLOG")]
    backlog: i32,

    /// seconds a client has to finish a request head once started (default 10)
    #[argh(option, default = "config::HEAD_TIMEOUT.as_secs_f64()")]
    head_timeout: f64,

    /// seconds an idle keep-alive connection is kept open (default 60)
    #[argh(option, default = "config::KEEPALIVE_TIMEOUT.as_secs_f64()")]
    keepalive_timeout: f64,

    /// seconds a request body may go without a byte while the app waits (default 30)
    #[argh(option, default = "config::BODY_TIMEOUT.as_secs_f64()")]
    body_timeout: f64,

    /// seconds pending output may go without the client taking a byte (default 30)
    #[argh(option, default = "config::WRITE_TIMEOUT.as_secs_f64()")]
    write_timeout: f64,

    /// longest request line in bytes; longer gets 414 (default 8192)
    #[argh(option, default = "Limits::default().max_request_line")]
    max_request_line: usize,

    /// largest request head in bytes; larger gets 431 (default 65536)
    #[argh(option, default = "Limits::default().max_head")]
    max_head: usize,

    /// most header fields in a request; more gets 431 (default 100)
    #[argh(option, default = "Limits::default().max_headers")]
    max_headers: usize,

    /// output bytes above which a connection stops parsing pipelined requests and app writes
    /// wait (default 65536)
    #[argh(option, default = "config::OUTPUT_HIGH_WATER")]
    output_high_water: usize,

    /// unread request-body bytes discarded to keep a connection alive (default 262144)
    #[argh(option, default = "config::DRAIN_LIMIT")]
    drain_limit: u64,

    /// largest body an app collects whole; larger gets 413 (default 1048576)
    #[argh(option, default = "config::MAX_BODY")]
    max_body: usize,

    /// write a Common Log Format line per request to PATH, or to standard output for -
    #[argh(option)]
    access_log: Option<String>,

    /// print nothing but errors
    #[argh(switch)]
    quiet: bool,
}

/// Turns a flag's seconds into a duration, refusing what is not a finite positive number.
fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "--{flag} must be a positive number of seconds, not {value}"
        ))
    }
}

fn config_from(args: &Args) -> Result<Config, String> {
    let limits = Limits {
        max_request_line: args.max_request_line,
        max_head: args.max_head,
        max_headers: args.max_headers,
        ..Limits::default()
    };
    if limits.max_request_line == 0 || limits.max_head == 0 || limits.max_headers == 0 {
        return Err("--max-request-line, --max-head and --max-headers must be above 0".into());
    }
    if args.output_high_water == 0 {
        return Err("--output-high-water must be above 0".into());
    }
    Ok(Config {
        limits,
        head_timeout: seconds("head-timeout", args.head_timeout)?,
        keepalive_timeout: seconds("keepalive-timeout", args.keepalive_timeout)?,
        body_timeout: seconds("body-timeout", args.body_timeout)?,
        write_timeout: seconds("write-timeout", args.write_timeout)?,
        output_high_water: args.output_high_water,
        drain_limit: args.drain_limit,
        max_body: args.max_body,
    })
}

fn app_named(name: Option<&str>) -> Result<Rc<dyn App>, String> {
    Ok(match name {
        None => Rc::new(
            Router::new()
                .exact("/", Hello)
                .mount("/echo", Echo)
                .mount("/upload", Upload),
        ),
        Some("hello") => Rc::new(Hello),
        Some("echo") => Rc::new(Echo),
        Some("upload") => Rc::new(Upload),
        Some(other) => {
            return Err(format!(
                "unknown app {other:?}; choose hello, echo or upload"
            ));
        }
    })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = match Args::from_args(&strs[..1], &strs[1..]) {
        Ok(args) => args,
        Err(early) => {
            // `--help` is a success; a bad flag is a usage error (exit 2), one clear message.
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("asycamore: {}", early.output.trim_end());
                eprintln!("Run asycamore --help for the flags.");
                ExitCode::from(2)
            };
        }
    };
    let result = config_from(&args).and_then(|config| {
        let mut app = app_named(args.app.as_deref())?;
        if let Some(path) = &args.access_log {
            let out: Box<dyn std::io::Write + Send> = if path == "-" {
                Box::new(std::io::stdout())
            } else {
                Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| format!("cannot open the access log {path}: {e}"))?,
                )
            };
            app = Rc::new(AccessLog::new(app, out));
        }
        let server = Server::bind(args.bind, config, args.backlog, false)
            .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        if !args.quiet {
            eprintln!("asycamore: serving on http://{}", server.local_addr());
        }
        server.run(app).map_err(|e| format!("server failed: {e}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("asycamore: {message}");
            ExitCode::from(2)
        }
    }
}
