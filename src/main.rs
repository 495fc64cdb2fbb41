//! The `asycamore` binary: serves the demo applications over HTTP/1.1.
//!
//! `asycamore --bind 127.0.0.1:8080` serves the demo applications (see `asycamore::apps::demo`);
//! `asycamore --app hello` serves one application at every path (for benchmarks).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use argh::FromArgs;

use asycamore::apps::{self, DemoOptions, Echo, Hello, Upload};
use asycamore::bind::{self, BindSpec};
use asycamore::config::{self, Config};
use asycamore::detect::Limits;
use asycamore::middleware::access_log::{LineFormat, LogFormat, LogWriter};
use asycamore::middleware::{AccessLog, Router};
use asycamore::pid_file::PidFile;
use asycamore::pool::{self, ThreadPool};
use asycamore::restart::{self, Inherited};
use asycamore::server::{self, PollerKind, Server, ServerOptions};
use asycamore::service::App;
use asycamore::signal;
use asycamore::socket_file::{self, FileMode};
use asycamore::units::{Bytes, Seconds};

/// The address served when no --bind is given.
const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

/// asycamore: an HTTP/1.1 server built from hand-written coroutines over poll(2) or epoll(7).
/// Sizes take K, M or G (64K, 1M); durations take ms, s, m or h (500ms, 10s, 2m), and a bare
/// number is seconds.
#[derive(FromArgs)]
struct Args {
    /// address to listen on: 127.0.0.1:8080, [::1]:8080, HOST:PORT with a host name (every
    /// local address it resolves to) or unix:PATH (a socket file, removed at exit); repeat for
    /// several (default 127.0.0.1:8080)
    #[argh(option)]
    bind: Vec<BindSpec>,

    /// permission bits of each unix:PATH socket file, in octal; connecting needs write
    /// permission (default 0660: the owner and the group)
    #[argh(option, default = "socket_file::DEFAULT_MODE")]
    unix_mode: FileMode,

    /// print the version and exit
    #[argh(switch)]
    version: bool,

    /// serve one application at every path: hello, echo or upload (default: all of them, routed
    /// by path: / hello, /echo, /upload)
    #[argh(option)]
    app: Option<String>,

    /// worker threads, each with its own loop and SO_REUSEPORT listeners (default: one per core)
    #[argh(option)]
    workers: Option<usize>,

    /// most connections open at once; beyond it new clients wait in the kernel's backlog
    /// (default: no limit)
    #[argh(option)]
    max_connections: Option<usize>,

    /// time in-flight requests get to finish after SIGTERM, SIGINT or SIGQUIT (default 30s)
    #[argh(option, default = "Seconds(server::GRACE)")]
    grace: Seconds,

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

    /// accept a TCP connection as soon as its handshake completes, not once its first bytes
    /// arrive (TCP_DEFER_ACCEPT, on by default)
    #[argh(switch)]
    no_defer_accept: bool,

    /// time a client has to finish a request head once started (default 10s)
    #[argh(option, default = "Seconds(config::HEAD_TIMEOUT)")]
    head_timeout: Seconds,

    /// time an idle keep-alive connection is kept open (default 60s)
    #[argh(option, default = "Seconds(config::KEEPALIVE_TIMEOUT)")]
    keepalive_timeout: Seconds,

    /// time a request body may go without a byte while the app waits (default 30s)
    #[argh(option, default = "Seconds(config::BODY_TIMEOUT)")]
    body_timeout: Seconds,

    /// time pending output may go without the client taking a byte (default 30s)
    #[argh(option, default = "Seconds(config::WRITE_TIMEOUT)")]
    write_timeout: Seconds,

    /// time an upgraded connection (a WebSocket, after 101) may go without a byte either way
    /// (default 300s)
    #[argh(option, default = "Seconds(config::UPGRADE_IDLE_TIMEOUT)")]
    upgrade_idle_timeout: Seconds,

    /// largest WebSocket message /ws echoes, all fragments together; larger is closed with
    /// 1009 (default 16M)
    #[argh(option, default = "Bytes(asycamore::ws::MAX_MESSAGE)")]
    ws_max_message: Bytes,

    /// destinations CONNECT may tunnel to, HOST:PORT[,HOST:PORT...]; others get 403, and
    /// without the flag every CONNECT gets 405
    #[argh(option)]
    allow_connect: Option<String>,

    /// longest request line; longer gets 414 (default 8K)
    #[argh(option, default = "Bytes(Limits::default().max_request_line as u64)")]
    max_request_line: Bytes,

    /// largest request head; larger gets 431 (default 64K)
    #[argh(option, default = "Bytes(Limits::default().max_head as u64)")]
    max_head: Bytes,

    /// most header fields in a request; more gets 431 (default 100)
    #[argh(option, default = "Limits::default().max_headers")]
    max_headers: usize,

    /// output above which a connection stops parsing pipelined requests and app writes wait
    /// (default 64K)
    #[argh(option, default = "Bytes(config::OUTPUT_HIGH_WATER as u64)")]
    output_high_water: Bytes,

    /// unread request-body bytes discarded to keep a connection alive (default 256K)
    #[argh(option, default = "Bytes(config::DRAIN_LIMIT)")]
    drain_limit: Bytes,

    /// largest body an app collects whole with read_to_end; larger gets 413 (default 1M)
    #[argh(option, default = "Bytes(config::MAX_BODY as u64)")]
    max_body: Bytes,

    /// largest request body the server accepts for any app, streamed or not; larger gets 413
    /// and a close, 0 for no limit (default 4G)
    #[argh(option, default = "Bytes(asycamore::detect::MAX_REQUEST_BODY)")]
    max_request_body: Bytes,

    /// write a line per request to PATH, or to standard output for -; SIGUSR1 or SIGHUP reopens
    /// it
    #[argh(option)]
    access_log: Option<String>,

    /// access log lines: common, combined (adds Referer and User-Agent) or json (default
    /// common)
    #[argh(option, default = "LogFormat::Common")]
    access_log_format: LogFormat,

    /// end common and combined log lines with the request's duration in microseconds (json
    /// lines always carry duration_us)
    #[argh(switch)]
    access_log_duration: bool,

    /// write the serving process's pid to PATH (replaced by the new process after a restart)
    #[argh(option)]
    pid_file: Option<PathBuf>,

    /// print nothing but errors
    #[argh(switch)]
    quiet: bool,

    /// folder served under /files/ (default: the current folder)
    #[argh(option, default = "PathBuf::from(\".\")")]
    root: PathBuf,

    /// list the files of a directory without index.html under /files/ (default: 403)
    #[argh(switch)]
    list_dirs: bool,

    /// send /files/ bodies by reading and writing them piece by piece instead of with
    /// sendfile(2), for comparison
    #[argh(switch)]
    no_sendfile: bool,

    /// where /proxy/ forwards requests, HOST:PORT (default: none, /proxy/ answers 503)
    #[argh(option)]
    upstream: Option<String>,

    /// time the upstream may stay silent before /proxy/ answers 504 (default 10s)
    #[argh(option, default = "Seconds(apps::proxy::TIMEOUT)")]
    upstream_timeout: Seconds,

    /// threads of the pool /blocking runs its work on (default 4)
    #[argh(option, default = "pool::THREADS")]
    threads: usize,

    /// most jobs waiting for a pool thread; beyond it /blocking answers 503 (default 64)
    #[argh(option, default = "pool::QUEUE")]
    pool_queue: usize,
}

/// A flag's duration, refusing zero (every timeout and the grace period must be positive).
fn positive(flag: &str, value: Seconds) -> Result<Duration, String> {
    if value.get().is_zero() {
        Err(format!("--{flag} must be above 0"))
    } else {
        Ok(value.get())
    }
}

fn config_from(args: &Args) -> Result<Config, String> {
    let limits = Limits {
        max_request_line: args.max_request_line.as_usize(),
        max_head: args.max_head.as_usize(),
        max_headers: args.max_headers,
        max_request_body: args.max_request_body.0,
        ..Limits::default()
    };
    if limits.max_request_line == 0 || limits.max_head == 0 || limits.max_headers == 0 {
        return Err("--max-request-line, --max-head and --max-headers must be above 0".into());
    }
    if args.output_high_water.get() == 0 {
        return Err("--output-high-water must be above 0".into());
    }
    Ok(Config {
        limits,
        head_timeout: positive("head-timeout", args.head_timeout)?,
        keepalive_timeout: positive("keepalive-timeout", args.keepalive_timeout)?,
        body_timeout: positive("body-timeout", args.body_timeout)?,
        write_timeout: positive("write-timeout", args.write_timeout)?,
        upgrade_idle_timeout: positive("upgrade-idle-timeout", args.upgrade_idle_timeout)?,
        output_high_water: args.output_high_water.as_usize(),
        drain_limit: args.drain_limit.get(),
        max_body: args.max_body.as_usize(),
        profile: args.profile,
    })
}

/// The application `--app` names, or `None` for the demo router ([`apps::demo`]).
fn app_named(name: Option<&str>) -> Result<Option<Rc<dyn App>>, String> {
    Ok(Some(match name {
        None => return Ok(None),
        // Behind a router mounted at the root, so the method rules apply (RFC 9110 §9).
        Some("hello") => Rc::new(Router::new().mount("", Hello)),
        Some("echo") => Rc::new(Router::new().mount("", Echo)),
        Some("upload") => Rc::new(Router::new().mount("", Upload)),
        Some(other) => {
            return Err(format!(
                "unknown app {other:?}; choose hello, echo or upload"
            ));
        }
    }))
}

/// `--allow-connect`'s list, each `HOST:PORT` resolved once, here (a name lookup blocks).
fn allowed_destinations(list: &str) -> Result<Vec<(String, SocketAddr)>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|destination| {
            let has_port = destination
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !has_port {
                return Err(format!("--allow-connect {destination}: expected HOST:PORT"));
            }
            let addr = destination
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| format!("--allow-connect {destination}: cannot resolve it"))?;
            Ok((destination.to_owned(), addr))
        })
        .collect::<Result<Vec<_>, String>>()
        .and_then(|v| {
            if v.is_empty() {
                Err("--allow-connect needs at least one HOST:PORT".into())
            } else {
                Ok(v)
            }
        })
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
    demo.sendfile = !args.no_sendfile;
    if let Some(list) = &args.allow_connect {
        demo.allow_connect = allowed_destinations(list)?;
    }
    demo.ws_max_message = match args.ws_max_message.get() {
        0 => return Err("--ws-max-message must be above 0".into()),
        n => n,
    };
    if let Some(upstream) = &args.upstream {
        // Resolved once, here: a name lookup blocks, so it has no place on the loop.
        let addr = upstream
            .to_socket_addrs()
            .map_err(|e| format!("--upstream {upstream}: {e}"))?
            .next()
            .ok_or_else(|| format!("--upstream {upstream}: no address"))?;
        demo.upstream = Some(addr);
    }
    demo.upstream_timeout = positive("upstream-timeout", args.upstream_timeout)?;
    Ok(demo)
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
        eprintln!(
            "  sends: {} calls, {:.0} bytes per call",
            e.sends.calls,
            per(e.sends.bytes, e.sends.calls)
        );
        for k in &r.by_kind {
            eprintln!(
                "  requests of {}: {}; per request {:.2} handler resumes, {:.2} µs in handler \
steps, {:.2} connection resumes, {:.2} sends; {:.0} bytes per send",
                k.kind,
                k.requests,
                per(k.handler_resumes, k.requests),
                k.handler_time.as_secs_f64() * 1e6 / k.requests.max(1) as f64,
                per(k.connection_resumes, k.requests),
                per(k.sends.calls, k.requests),
                per(k.sends.bytes, k.sends.calls),
            );
        }
        for (took, kind) in &r.slowest_steps {
            eprintln!(
                "  slow handler step: {kind} {:.3} ms",
                took.as_secs_f64() * 1e3
            );
        }
    }
}

/// `n / of`, 0 when there is nothing to divide by.
fn per(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// One line for a usage error argh reported (its message may span several lines).
fn usage_error(output: &str) -> String {
    let message: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    format!(
        "asycamore: {}. Run asycamore --help for the flags.",
        message.join(" ").trim_end_matches('.')
    )
}

fn main() -> ExitCode {
    // First, before any thread exists: every thread started from here on is born with the
    // handled signals blocked, so none of them can run a signal's default action (see
    // `asycamore::signal`). A signal arriving from now on waits for the signal thread.
    if let Err(e) = signal::block_handled() {
        eprintln!("asycamore: cannot block signals: {e}");
        return ExitCode::from(2);
    }
    asycamore::stats::process_start();
    // Next, before anything opens a descriptor: listeners handed over by a restarting server.
    let inherited = match Inherited::from_env() {
        Ok(inherited) => inherited,
        Err(message) => {
            eprintln!("asycamore: {message}");
            return ExitCode::from(2);
        }
    };
    let argv: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let args = match Args::from_args(&strs[..1], &strs[1..]) {
        Ok(args) => args,
        Err(early) => {
            // `--help` is a success; a bad flag is a usage error (exit 2), one clear line.
            return if early.status.is_ok() {
                println!("{}", early.output);
                ExitCode::SUCCESS
            } else {
                eprintln!("{}", usage_error(&early.output));
                ExitCode::from(2)
            };
        }
    };
    if args.version {
        println!("asycamore {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match serve(&args, inherited) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("asycamore: {message}");
            ExitCode::from(2)
        }
    }
}

/// Everything after the flags: bind (or take over inherited listeners), start the threads,
/// serve until shutdown, write the last log lines.
fn serve(args: &Args, inherited: Option<Inherited>) -> Result<(), String> {
    let config = config_from(args)?;
    app_named(args.app.as_deref())?; // refuse a bad name before binding
    let workers = match args.workers {
        Some(0) => return Err("--workers must be at least 1".into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if args.max_connections == Some(0) {
        return Err("--max-connections must be at least 1".into());
    }
    let specs = if args.bind.is_empty() {
        vec![BindSpec::Addr(DEFAULT_BIND)]
    } else {
        args.bind.clone()
    };
    // A host name is resolved here, once; a restarted server inherits its listeners instead.
    let endpoints = match &inherited {
        Some(inherited) => bind::Endpoints {
            inet: inherited
                .local_addrs()
                .map_err(|e| format!("inherited listeners: {e}"))?,
            unix: Vec::new(),
        },
        None => bind::resolve_all(&specs).map_err(|e| e.to_string())?,
    };
    let options = ServerOptions {
        addrs: endpoints.inet,
        unix: endpoints.unix,
        unix_mode: args.unix_mode,
        config,
        backlog: args.backlog,
        defer_accept: !args.no_defer_accept,
        workers,
        max_connections: args.max_connections,
        grace: positive("grace", args.grace)?,
        poller: args.poller,
    };
    let line = LineFormat {
        format: args.access_log_format,
        duration: args.access_log_duration,
    };
    let log = args
        .access_log
        .as_deref()
        .map(|path| {
            LogWriter::open(path, line)
                .map_err(|e| format!("cannot open the access log {path}: {e}"))
        })
        .transpose()?;
    // The demo's flags are checked before anything is bound: a bad one is one line and exit 2
    // whether or not the address is free.
    let demo = demo_options(args)?;
    let parent = inherited.as_ref().and_then(|i| i.parent);
    let server = match inherited {
        Some(inherited) => Server::from_listeners(inherited.tcp, inherited.unix, options)
            .map_err(|e| format!("cannot serve on the inherited listeners: {e}"))?,
        None => Server::bind(options).map_err(|e| format!("cannot listen on {e}"))?,
    };
    let urls: Vec<String> = server
        .local_addrs()
        .iter()
        .map(|a| format!("http://{a}"))
        .chain(
            server
                .socket_paths()
                .iter()
                .map(|p| format!("unix:{}", p.display())),
        )
        .collect();
    let name = args.app.clone();
    let channel = log.as_ref().map(LogWriter::channel);
    let mut pid_file = None;
    let reopen_logs = log.as_ref().map(|log| {
        let reopener = log.reopener();
        Box::new(move || reopener.reopen()) as Box<dyn FnMut() + Send>
    });
    let make_app = move |worker: &asycamore::server::Worker| -> Rc<dyn App> {
        let app = match app_named(name.as_deref()) {
            Ok(Some(app)) => app,
            _ => apps::demo(&demo, worker),
        };
        match &channel {
            Some(channel) => Rc::new(AccessLog::new(app, channel.clone())),
            None => app,
        }
    };
    let serving = || {
        // Serving now: say so, then (after a restart) let the old process drain.
        if let Some(path) = &args.pid_file {
            match PidFile::write(path) {
                Ok(file) => pid_file = Some(file),
                Err(e) => eprintln!("asycamore: cannot write {}: {e}", path.display()),
            }
        }
        if !args.quiet {
            eprintln!(
                "asycamore: pid {} serving on {} with {workers} worker(s)",
                std::process::id(),
                urls.join(", ")
            );
        }
        if let Some(parent) = parent {
            match restart::take_over(parent) {
                Ok(true) if !args.quiet => {
                    eprintln!("asycamore: took over from pid {parent}, which now drains");
                }
                Ok(_) => {}
                Err(e) => eprintln!("asycamore: cannot tell pid {parent} to drain: {e}"),
            }
        }
    };
    let extras = asycamore::serve::Extras {
        reopen_logs,
        restart: true,
        quiet: args.quiet,
        serving,
    };
    let reports = asycamore::serve::run(server, make_app, extras);
    let reports = reports.map_err(|e| format!("server failed: {e}"))?;
    // Every worker has returned and handed off its last lines: write them before exiting.
    if let Some(log) = log {
        log.finish();
    }
    drop(pid_file);
    if args.profile {
        print_profile(&reports);
    }
    Ok(())
}
