//! The `asycamore` binary: serves the demo applications over HTTP/1.1.
//!
//! `asycamore --bind 127.0.0.1:8080` serves the demo applications (see `asycamore::apps::demo`);
//! `asycamore --app hello` serves one application at every path (for benchmarks).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use argh::FromArgs;

use asycamore::apps::{self, DemoOptions, Echo, Hello, Upload};
use asycamore::config::{self, Config};
use asycamore::detect::Limits;
use asycamore::middleware::{AccessLog, access_log};
use asycamore::pool::{self, ThreadPool};
use asycamore::server::{self, PollerKind, Server, ServerOptions};
use asycamore::service::App;
use asycamore::signal;

/// asycamore: an HTTP/1.1 server built from hand-written coroutines over poll(2) or epoll(7).
#[derive(FromArgs)]
struct Args {
    /// address to listen on (default 127.0.0.1:8080)
    #[argh(option, default = "SocketAddr::from(([127, 0, 0, 1], 8080))")]
    bind: SocketAddr,

    /// serve one application at every path: hello, echo or upload (default: all of them, routed
    /// by path: / hello, /echo, /upload)
    #[argh(option)]
    app: Option<String>,

    /// worker threads, each with its own loop and SO_REUSEPORT listener (default: one per core)
    #[argh(option)]
    workers: Option<usize>,

    /// most connections open at once; beyond it new clients wait in the kernel's backlog
    /// (default: no limit)
    #[argh(option)]
    max_connections: Option<usize>,

    /// seconds in-flight requests get to finish after SIGTERM or SIGINT (default 30)
    #[argh(option, default = "server::GRACE.as_secs_f64()")]
    grace: f64,

    /// readiness backend of each worker's loop: epoll (the default on Linux: the cost of a turn
    /// follows the connections that are ready) or poll (the executor's reference backend: it
    /// follows the connections open)
    #[argh(option, default = "PollerKind::default()")]
    poller: PollerKind,

    /// print a profile at exit: time in poll vs in steps, events per wake, resumes per kind
    #[argh(switch)]
    profile: bool,

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

    /// folder served under /files/ (default: the current folder)
    #[argh(option, default = "PathBuf::from(\".\")")]
    root: PathBuf,

    /// list the files of a directory without index.html under /files/ (default: 403)
    #[argh(switch)]
    list_dirs: bool,

    /// where /proxy/ forwards requests, HOST:PORT (default: none, /proxy/ answers 503)
    #[argh(option)]
    upstream: Option<String>,

    /// seconds the upstream may stay silent before /proxy/ answers 504 (default 10)
    #[argh(option, default = "apps::proxy::TIMEOUT.as_secs_f64()")]
    upstream_timeout: f64,

    /// threads of the pool /blocking runs its work on (default 4)
    #[argh(option, default = "pool::THREADS")]
    threads: usize,

    /// most jobs waiting for a pool thread; beyond it /blocking answers 503 (default 64)
    #[argh(option, default = "pool::QUEUE")]
    pool_queue: usize,
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
        profile: args.profile,
    })
}

/// The application `--app` names, or `None` for the demo router ([`apps::demo`]).
fn app_named(name: Option<&str>) -> Result<Option<Rc<dyn App>>, String> {
    Ok(Some(match name {
        None => return Ok(None),
        Some("hello") => Rc::new(Hello),
        Some("echo") => Rc::new(Echo),
        Some("upload") => Rc::new(Upload),
        Some(other) => {
            return Err(format!(
                "unknown app {other:?}; choose hello, echo or upload"
            ));
        }
    }))
}

/// The demo applications' settings, from the flags. The thread pool is made here, once, and
/// shared by every worker.
fn demo_options(args: &Args) -> Result<DemoOptions, String> {
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    let pool = ThreadPool::new(args.threads, args.pool_queue)
        .map_err(|e| format!("cannot start the thread pool: {e}"))?;
    let mut demo = DemoOptions::new(Arc::new(pool));
    demo.root = args
        .root
        .canonicalize()
        .ok()
        .filter(|root| root.is_dir())
        .ok_or_else(|| format!("--root {} is not a folder", args.root.display()))?;
    demo.list_dirs = args.list_dirs;
    if let Some(upstream) = &args.upstream {
        // Resolved once, here: a name lookup blocks, so it has no place on the loop.
        let addr = upstream
            .to_socket_addrs()
            .map_err(|e| format!("--upstream {upstream}: {e}"))?
            .next()
            .ok_or_else(|| format!("--upstream {upstream}: no address"))?;
        demo.upstream = Some(addr);
    }
    demo.upstream_timeout = seconds("upstream-timeout", args.upstream_timeout)?;
    Ok(demo)
}

/// Opens the access log's destination and starts its writer thread.
fn access_log_writer(path: &str) -> Result<mpsc::Sender<Vec<u8>>, String> {
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
    Ok(access_log::spawn_writer(out))
}

/// Prints what `--profile` promises, per worker.
fn print_profile(reports: &[asycamore::stats::StatsSnapshot]) {
    for (i, r) in reports.iter().enumerate() {
        let e = &r.executor;
        let busy = e.poll_time + e.run_time;
        let share = |d: Duration| {
            if busy.is_zero() {
                0.0
            } else {
                100.0 * d.as_secs_f64() / busy.as_secs_f64()
            }
        };
        eprintln!(
            "worker {i}: {} connections, {} requests, responses 1xx-5xx {:?}, {} timeouts, {} panics",
            r.connections_total, r.requests, r.responses, r.timeouts, r.panics
        );
        eprintln!(
            "  loop: {} turns, {} polls, {:.2} events per poll, {} resumes; time in poll {:.3}s ({:.1}%), in steps {:.3}s ({:.1}%)",
            e.turns,
            e.polls,
            e.events_per_poll(),
            e.resumes,
            e.poll_time.as_secs_f64(),
            share(e.poll_time),
            e.run_time.as_secs_f64(),
            share(e.run_time)
        );
        for (kind, n) in &e.resumes_by_kind {
            eprintln!("  resumes of {kind}: {n}");
        }
        for (took, kind) in &r.slowest_steps {
            eprintln!(
                "  slow handler step: {kind} {:.3} ms",
                took.as_secs_f64() * 1e3
            );
        }
    }
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
        app_named(args.app.as_deref())?; // refuse a bad name before binding
        let log = args
            .access_log
            .as_deref()
            .map(access_log_writer)
            .transpose()?;
        let workers = match args.workers {
            Some(0) => return Err("--workers must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if args.max_connections == Some(0) {
            return Err("--max-connections must be at least 1".into());
        }
        let options = ServerOptions {
            addr: args.bind,
            config,
            backlog: args.backlog,
            workers,
            max_connections: args.max_connections,
            grace: seconds("grace", args.grace)?,
            poller: args.poller,
        };
        signal::block_shutdown_signals().map_err(|e| format!("cannot block signals: {e}"))?;
        let server =
            Server::bind(options).map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        signal::spawn_signal_thread(server.shutdown_handle(), args.quiet)
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        if !args.quiet {
            eprintln!(
                "asycamore: serving on http://{} with {workers} worker(s)",
                server.local_addr()
            );
        }
        let name = args.app.clone();
        let demo = demo_options(&args)?;
        let reports = server
            .run(move |worker| {
                let app = match app_named(name.as_deref()) {
                    Ok(Some(app)) => app,
                    _ => apps::demo(&demo, worker),
                };
                match &log {
                    Some(tx) => Rc::new(AccessLog::with_writer(app, tx.clone())),
                    None => app,
                }
            })
            .map_err(|e| format!("server failed: {e}"))?;
        if args.profile {
            print_profile(&reports);
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("asycamore: {message}");
            ExitCode::from(2)
        }
    }
}
