//! `profiles`: what each kind of application costs the server — the question the seed projects
//! started from — measured against hyper 1.x with the same handlers.
//!
//! A driver like `compare`: it builds asycamore and `bench/peers/` (the `hyper-profiles` peer:
//! hyper on tokio's current-thread runtime), then for every profile and server starts a fresh
//! server pinned to CPU 0 (so each cell's peak RSS is its own) and runs our `load` pinned to
//! CPU 1:
//!
//! 1. a warm-up second, then a closed-loop run: requests/s, and the server's CPU time per
//!    response (utime + stime from `/proc/PID/stat`);
//! 2. once every server has its peak, an open-loop run on each at the same rate, 80% of the
//!    lowest peak (`load --rate`, latency from the intended send time, sends kept to the
//!    microsecond): p50 and p99, with the CPU time the hypervisor stole meanwhile (`/proc/stat`),
//!    since on a shared machine a stolen tick is a 10 ms stall every server shows alike;
//! 3. with `strace -c` attached, a few hundred requests on one connection: sending system calls
//!    per response (`write`, `writev`, `sendto`, `sendmsg`, `sendfile`) on any descriptor, so
//!    they include a proxy's sends to its upstream and the `write` that wakes a loop through
//!    its eventfd when pool work finishes (`blocking`);
//! 4. `VmHWM`, the peak RSS; and for asycamore, from a second server run with `--profile` for
//!    a second (so that the clock reads it costs stay out of the figures above), its own account
//!    at exit: resumes of the handler and of the connection per request, time in handler steps,
//!    sends per request and bytes per send, and the loop's time in `poll` against time in steps.
//!
//! The `proxy` profile's upstream is an `asycamore --app hello` on CPU 0, beside the proxy (not
//! beside the load tool, which spins while it waits for its next send and would starve it); only
//! the proxy's CPU is measured, and its requests/s are those of a core shared with its upstream. `blocking` uses a pool of 4 threads in both servers.
//! Writes `profiles.md`, `profiles.svg` and `profiles.json` to the output folder.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use argh::FromArgs;
use asycamore::units::Seconds;

use crate::chart::{Group, grouped_bars};
use crate::cli::ToolError;
use crate::procfs::{cpu_seconds, vm_kib};
use crate::servers::{
    Running, TempDir, build_asycamore, build_project, free_port, start_upstream, target_dir, which,
};
use crate::sys;

/// What each kind of application costs the server, asycamore against hyper.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "profiles")]
pub struct ProfilesArgs {
    /// comma-separated profiles (default all): tiny, large, stream, many-writes, upload,
    /// upload-chunked, timer, timer-1000, blocking, proxy
    #[argh(option)]
    pub profiles: Option<String>,
    /// comma-separated servers among asycamore, hyper (default both)
    #[argh(option)]
    pub servers: Option<String>,
    /// time per measured run, e.g. 3s (default 3s), after a 1 s warm-up
    #[argh(option, default = "Seconds(Duration::from_secs(3))")]
    pub duration: Seconds,
    /// rounds over all cells; each cell keeps its round of median CPU per request (default 1)
    #[argh(option, default = "1")]
    pub repeat: usize,
    /// output folder for profiles.md, profiles.svg and profiles.json (default bench/results)
    #[argh(option, default = "PathBuf::from(\"bench/results\")")]
    pub out: PathBuf,
    /// repository root (default: the current directory)
    #[argh(option, default = "PathBuf::from(\".\")")]
    pub repo: PathBuf,
    /// do not build; use binaries already built
    #[argh(switch)]
    pub no_build: bool,
    /// print the results as one JSON object instead of the table
    #[argh(switch)]
    pub json: bool,
}

/// One application profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Name on the command line.
    pub name: &'static str,
    /// What the application does, for the table.
    pub what: &'static str,
    /// The request target.
    pub target: &'static str,
    /// Concurrent connections.
    pub connections: usize,
    /// Extra `load` flags (the request body).
    pub load_flags: &'static [&'static str],
    /// The handler kind asycamore's `--profile` reports it under.
    pub kind: &'static str,
}

/// The matrix, in the order of the table.
pub const PROFILES: [Profile; 10] = [
    Profile {
        name: "tiny",
        what: "13-byte body, one write",
        target: "/",
        connections: 50,
        load_flags: &[],
        kind: "hello",
    },
    Profile {
        name: "large",
        what: "64 KiB body, one write",
        target: "/bytes?n=65536",
        connections: 50,
        load_flags: &[],
        kind: "bytes",
    },
    Profile {
        name: "stream",
        what: "1 MiB in 4 KiB writes, until the output is full",
        target: "/bytes?n=1048576&write=4096",
        connections: 50,
        load_flags: &[],
        kind: "bytes",
    },
    Profile {
        name: "many-writes",
        what: "100 writes of 16 bytes",
        target: "/bytes?n=1600&write=16",
        connections: 50,
        load_flags: &[],
        kind: "bytes",
    },
    Profile {
        name: "upload",
        what: "64 KiB POST (Content-Length) read to the end",
        target: "/bytes",
        connections: 50,
        load_flags: &["--body-size", "65536"],
        kind: "bytes",
    },
    Profile {
        name: "upload-chunked",
        what: "64 KiB POST in 16 chunks of 4 KiB read to the end",
        target: "/bytes",
        connections: 50,
        load_flags: &["--chunks", "16", "--chunk-size", "4096"],
        kind: "bytes",
    },
    Profile {
        name: "timer",
        what: "answer after a 1 ms timer, 50 connections",
        target: "/sleep?ms=1",
        connections: 50,
        load_flags: &[],
        kind: "sleep",
    },
    Profile {
        name: "timer-1000",
        what: "answer after a 1 ms timer, 1,000 connections",
        target: "/sleep?ms=1",
        connections: 1000,
        load_flags: &[],
        kind: "sleep",
    },
    Profile {
        name: "blocking",
        what: "1 ms of blocking work on a pool of 4 threads",
        target: "/blocking?ms=1",
        connections: 50,
        load_flags: &[],
        kind: "blocking",
    },
    Profile {
        name: "proxy",
        what: "relay to an upstream hello, kept-alive connections",
        target: "/proxy/",
        connections: 50,
        load_flags: &[],
        kind: "proxy",
    },
];

/// The servers `profiles` knows.
pub const SERVERS: [&str; 2] = ["asycamore", "hyper"];

/// Requests of the `strace -c` run.
const STRACE_REQUESTS: u64 = 300;

/// The open-loop run's rate, as a share of the closed-loop peak.
const OPEN_LOOP_SHARE: f64 = 0.8;

/// asycamore's own account of one profile (`--profile`, at exit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inside {
    /// Handler resumes per request.
    pub handler_resumes: f64,
    /// Microseconds in handler steps per request.
    pub handler_us: f64,
    /// Connection resumes per request.
    pub connection_resumes: f64,
    /// Sending system calls per request.
    pub sends: f64,
    /// Bytes per send.
    pub bytes_per_send: f64,
    /// Microseconds the loop spent running steps (handler, connection, acceptor: every task),
    /// per request served. Time in `poll` is not given per request: it includes the idle waits
    /// while the other server is measured.
    pub steps_us: f64,
}

/// What one profile on one server gave.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    /// Closed-loop requests/s.
    pub rps: f64,
    /// Server CPU per response in the closed-loop run, microseconds.
    pub cpu_us: f64,
    /// Errors of both runs.
    pub errors: u64,
    /// The open-loop run's rate.
    pub open_rate: f64,
    /// Open-loop latency percentiles, microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// The 99th percentile of the load tool's own lateness, microseconds.
    pub lag_p99_us: f64,
    /// CPU time stolen by the hypervisor during the open-loop run, milliseconds, summed over all
    /// CPUs (the first line of `/proc/stat`).
    pub stolen_ms: f64,
    /// Peak RSS, KiB.
    pub hwm_kib: u64,
    /// Sending system calls per response, from `strace -c` (`None` without strace).
    pub sends_per_request: Option<f64>,
    /// asycamore's `--profile` account.
    pub inside: Option<Inside>,
}

/// The binaries.
struct Binaries {
    asycamore: PathBuf,
    hyper: PathBuf,
    load: PathBuf,
    strace: Option<PathBuf>,
}

fn build(repo: &Path, servers: &[&str], no_build: bool) -> Result<Binaries, String> {
    let target = target_dir(repo);
    let peers_target = target.join("peers");
    if !no_build {
        eprintln!("profiles: building asycamore (release)");
        build_asycamore(repo)?;
        if servers.contains(&"hyper") {
            eprintln!("profiles: building the hyper peers in bench/peers (release)");
            build_project(repo, "bench/peers/Cargo.toml", &peers_target)?;
        }
    }
    let strace = which("strace").or_else(|| {
        eprintln!("profiles: installing strace from Debian");
        let _ = crate::servers::apt_install("strace");
        which("strace")
    });
    if strace.is_none() {
        eprintln!("profiles: no strace; the sends-per-request column stays empty");
    }
    Ok(Binaries {
        asycamore: target.join("release/asycamore"),
        hyper: peers_target.join("release/hyper-profiles"),
        load: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        strace,
    })
}

/// Starts `server` on CPU 0 (with `upstream` for the proxy); with `account`, asycamore runs
/// with `--profile` and its stderr, where that reports at exit, goes to `dir/stderr`.
fn start(
    server: &str,
    bins: &Binaries,
    upstream: Option<SocketAddr>,
    dir: &Path,
    account: bool,
) -> Result<Running, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]);
    let mut stderr = Stdio::null();
    if server == "asycamore" {
        command
            .arg(&bins.asycamore)
            .args(["--quiet", "--workers", "1", "--threads", "4"])
            .args(account.then_some("--profile"))
            .arg("--bind")
            .arg(addr.to_string());
        if let Some(up) = upstream {
            command.arg("--upstream").arg(up.to_string());
        }
        let path = dir.join("stderr");
        stderr = std::fs::File::create(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .into();
    } else {
        command.arg(&bins.hyper).arg(addr.to_string());
        if let Some(up) = upstream {
            command.arg(up.to_string());
        }
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {server}: {e}"))?;
    Running::started(server, child, addr, None)
}

/// A `load` run on CPU 1 against `addr` for `profile`, with `extra` flags; its JSON.
fn load(
    bins: &Binaries,
    profile: &Profile,
    addr: SocketAddr,
    extra: &[String],
) -> Result<String, String> {
    let output = Command::new("taskset")
        .args(["-c", "1"])
        .arg(&bins.load)
        .arg("load")
        .arg(format!("http://{addr}{}", profile.target))
        .args(profile.load_flags)
        .args(extra)
        .arg("--json")
        .output()
        .map_err(|e| format!("starting load: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !text.contains("\"requests_per_sec\"") {
        return Err(format!(
            "load gave no report: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(text)
}

/// The number after `"key":` in a JSON text (the first one).
fn json_number(text: &str, key: &str) -> Option<f64> {
    let key = format!("\"{key}\":");
    let at = text.find(&key)? + key.len();
    let rest = text[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The number in `text` after `key` within the same JSON object (`"latency_us":{"p99":..}`).
fn json_nested(text: &str, object: &str, key: &str) -> Option<f64> {
    let at = text.find(&format!("\"{object}\":"))?;
    json_number(&text[at..], key)
}

/// Errors the load report counts.
fn load_errors(text: &str) -> u64 {
    let at = text.find("\"errors\":").unwrap_or(0);
    ["connect", "read", "malformed", "timeout"]
        .iter()
        .filter_map(|k| json_number(&text[at..], k))
        .sum::<f64>() as u64
        + ["4xx", "5xx"]
            .iter()
            .filter_map(|k| json_nested(text, "responses", k))
            .sum::<f64>() as u64
}

/// CPU time stolen so far, in clock ticks (`/proc/stat`, all CPUs).
fn stolen_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_owned();
            line.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The sending system calls in a `strace -c` summary.
fn strace_sends(summary: &str) -> u64 {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = *fields.last()?;
            let sending = [
                "write", "writev", "sendto", "sendmsg", "sendfile", "sendmmsg",
            ];
            if !sending.contains(&name) {
                return None;
            }
            // "% time  seconds  usecs/call  calls  [errors]  syscall": calls is the fourth.
            fields.get(3)?.parse::<u64>().ok()
        })
        .sum()
}

/// Sending system calls per response of `server` over [`STRACE_REQUESTS`] requests on one
/// connection, with strace attached to every thread.
fn count_sends(
    bins: &Binaries,
    profile: &Profile,
    server: &Running,
    dir: &Path,
) -> Result<Option<f64>, String> {
    let Some(strace) = &bins.strace else {
        return Ok(None);
    };
    let out = dir.join("strace");
    let mut tracer = Command::new(strace)
        .args([
            "-f",
            "-c",
            "-e",
            "trace=write,writev,sendto,sendmsg,sendfile,sendmmsg",
            "-o",
        ])
        .arg(&out)
        .arg("-p")
        .arg(server.child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting strace: {e}"))?;
    std::thread::sleep(Duration::from_millis(500));
    let text = load(
        bins,
        profile,
        server.addr,
        &[
            "-c".into(),
            "1".into(),
            "-n".into(),
            STRACE_REQUESTS.to_string(),
        ],
    );
    sys::interrupt(tracer.id());
    let _ = tracer.wait();
    let responses = json_number(&text?, "responses_total").unwrap_or(0.0);
    let summary = std::fs::read_to_string(&out).unwrap_or_default();
    Ok((responses > 0.0).then(|| strace_sends(&summary) as f64 / responses))
}

/// asycamore's `--profile` lines for handler kind `kind`.
fn parse_inside(report: &str, kind: &str) -> Option<Inside> {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("requests of {kind}:")))?;
    let after = |key: &str| -> Option<f64> {
        let at = line.find(key)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    // "worker 0: 2 connections, 100 requests, …" and "… in steps 0.004s (5.3%)".
    let requests: f64 = report
        .lines()
        .find(|l| l.starts_with("worker "))
        .and_then(|l| {
            let at = l.find(" requests")?;
            l[..at].split_whitespace().last()?.parse().ok()
        })
        .unwrap_or(0.0);
    let steps: f64 = report
        .lines()
        .find_map(|l| {
            let rest = &l[l.find("in steps ")? + "in steps ".len()..];
            rest.split('s').next()?.parse().ok()
        })
        .unwrap_or(0.0);
    let steps_us = if requests > 0.0 {
        steps * 1e6 / requests
    } else {
        0.0
    };
    Some(Inside {
        handler_resumes: after(" handler resumes")?,
        handler_us: after(" µs in handler")?,
        connection_resumes: after(" connection resumes")?,
        sends: after(" sends;")?,
        bytes_per_send: after(" bytes per send")?,
        steps_us,
    })
}

/// One server of a profile, started, with its scratch folder.
struct Started {
    server: &'static str,
    running: Running,
    dir: TempDir,
}

/// Measures `profile` on every server: first each one's closed-loop peak, then each one open
/// loop at the same rate, [`OPEN_LOOP_SHARE`] of the lowest peak — the same offered load for
/// all, so their percentiles compare (each at a share of its own peak, the faster server would
/// be asked for more, and a load tool near its own limit would queue for it).
fn measure(
    bins: &Binaries,
    profile: &Profile,
    servers: &[&'static str],
    seconds: u64,
) -> Result<Vec<(&'static str, Cell)>, String> {
    let upstream = match profile.name {
        "proxy" => Some(start_upstream(&bins.asycamore)?),
        _ => None,
    };
    let c = profile.connections.to_string();
    let closed = ["-c".to_string(), c, "-d".into(), format!("{seconds}s")];
    let mut warm = closed.to_vec();
    warm[3] = "1s".into();
    let mut started = Vec::new();
    let mut cells = Vec::new();
    for &server in servers {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "asycamore-profiles-{}-{}-{server}",
            std::process::id(),
            profile.name
        )));
        std::fs::create_dir_all(&dir.0).map_err(|e| format!("{}: {e}", dir.0.display()))?;
        let running = start(
            server,
            bins,
            upstream.as_ref().map(|u| u.addr),
            &dir.0,
            false,
        )?;
        let pid = running.child.id();
        let _ = load(bins, profile, running.addr, &warm);
        let before = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
        let text = load(bins, profile, running.addr, &closed)?;
        let after = cpu_seconds(pid).ok_or("cannot read the server's /proc/PID/stat")?;
        let responses = json_number(&text, "responses_total").unwrap_or(0.0);
        cells.push(Cell {
            rps: json_number(&text, "requests_per_sec").unwrap_or(0.0),
            cpu_us: (after - before) * 1e6 / responses.max(1.0),
            errors: load_errors(&text),
            ..Cell::default()
        });
        started.push(Started {
            server,
            running,
            dir,
        });
    }
    let lowest = cells.iter().map(|c| c.rps).fold(f64::INFINITY, f64::min);
    let rate = (lowest * OPEN_LOOP_SHARE).max(1.0).round();
    let mut measured = Vec::new();
    for (one, mut cell) in started.into_iter().zip(cells) {
        let Started {
            server,
            mut running,
            dir,
        } = one;
        let pid = running.child.id();
        cell.open_rate = rate;
        let stolen = stolen_ticks();
        let mut open = closed.to_vec();
        open.extend(["--rate".into(), rate.to_string()]);
        let text = load(bins, profile, running.addr, &open)?;
        cell.stolen_ms = stolen_ticks().saturating_sub(stolen) as f64 * 1e3
            / sys::clock_ticks_per_second() as f64;
        cell.p50_us = json_nested(&text, "latency_us", "p50").unwrap_or(0.0);
        cell.p99_us = json_nested(&text, "latency_us", "p99").unwrap_or(0.0);
        cell.lag_p99_us = json_nested(&text, "send_lag_us", "p99").unwrap_or(0.0);
        cell.errors += load_errors(&text);
        cell.sends_per_request = count_sends(bins, profile, &running, &dir.0)?;
        cell.hwm_kib = vm_kib(pid, "VmHWM").unwrap_or(0);
        if server == "asycamore" {
            // The inside account comes from a second server of its own, so that what
            // `--profile` costs (two clock reads per step) stays out of the figures above.
            sys::terminate(pid);
            let _ = running.child.wait();
            let upstream = upstream.as_ref().map(|u| u.addr);
            let mut counted = start(server, bins, upstream, &dir.0, true)?;
            let _ = load(bins, profile, counted.addr, &warm);
            sys::terminate(counted.child.id());
            let _ = counted.child.wait();
            let report = std::fs::read_to_string(dir.0.join("stderr")).unwrap_or_default();
            cell.inside = parse_inside(&report, profile.kind);
        }
        measured.push((server, cell));
    }
    Ok(measured)
}

/// All results: `(profile, server) → cell`, in the order measured.
type Results = Vec<(&'static str, &'static str, Cell)>;

fn find<'a>(results: &'a Results, profile: &str, server: &str) -> Option<&'a Cell> {
    results
        .iter()
        .find(|(p, s, _)| *p == profile && *s == server)
        .map(|(_, _, c)| c)
}

/// One cell per `(profile, server)`: of its rounds, the one of median CPU per request.
fn medians(mut rounds: Results) -> Results {
    rounds.sort_by(|a, b| a.2.cpu_us.total_cmp(&b.2.cpu_us));
    let mut results: Results = Vec::new();
    for (profile, server, _) in &rounds {
        if find(&results, profile, server).is_some() {
            continue;
        }
        let same: Vec<&Cell> = rounds
            .iter()
            .filter(|(p, s, _)| p == profile && s == server)
            .map(|(_, _, c)| c)
            .collect();
        results.push((profile, server, same[same.len() / 2].clone()));
    }
    results
}

/// The machine, in one line: CPU model, cores, kernel.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{model}, {cores} cores, Linux {kernel}")
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

fn pair(a: Option<f64>, b: Option<f64>, digits: usize) -> String {
    let one = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.digits$}"));
    format!("{} / {}", one(a), one(b))
}

/// The Markdown report.
fn markdown(
    results: &Results,
    profiles: &[Profile],
    servers: &[&str],
    seconds: u64,
    repeat: usize,
) -> String {
    let (a, h) = (
        servers.first().copied().unwrap_or("asycamore"),
        servers.get(1).copied(),
    );
    let get = |p: &Profile, s: Option<&str>| s.and_then(|s| find(results, p.name, s));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {}. Server pinned to CPU 0, load tool (`asycamore-bench load`) to CPU 1; a fresh \
server per cell; {seconds} s closed loop after a 1 s warm-up, then {seconds} s open loop at {:.0}% \
of the lower peak, the same rate for both; each cell is its round of median CPU per request of \
{repeat}. Pairs read {a} / {}; ratios are {a} ÷ {}.\n",
        machine(),
        OPEN_LOOP_SHARE * 100.0,
        h.unwrap_or("—"),
        h.unwrap_or("—"),
    );
    let _ = writeln!(
        s,
        "| profile | what the app does | req/s | CPU µs/req | CPU ratio | p50 µs | p99 µs | stolen ms | peak RSS MiB | sends/req |\n\
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in profiles {
        let (x, y) = (get(p, Some(a)), get(p, h));
        let f = |c: Option<&Cell>, g: fn(&Cell) -> f64| c.map(g);
        let errors: u64 = [x, y].iter().flatten().map(|c| c.errors).sum();
        let flag = if errors > 0 {
            format!(" ({errors} errors)")
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {}{flag} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.name,
            p.what,
            pair(f(x, |c| c.rps), f(y, |c| c.rps), 0),
            pair(f(x, |c| c.cpu_us), f(y, |c| c.cpu_us), 2),
            ratio(f(x, |c| c.cpu_us), f(y, |c| c.cpu_us)),
            pair(f(x, |c| c.p50_us), f(y, |c| c.p50_us), 0),
            pair(f(x, |c| c.p99_us), f(y, |c| c.p99_us), 0),
            pair(f(x, |c| c.stolen_ms), f(y, |c| c.stolen_ms), 0),
            pair(
                f(x, |c| c.hwm_kib as f64 / 1024.0),
                f(y, |c| c.hwm_kib as f64 / 1024.0),
                1
            ),
            pair(
                x.and_then(|c| c.sends_per_request),
                y.and_then(|c| c.sends_per_request),
                2
            ),
        );
    }
    let _ = writeln!(
        s,
        "\n`sends/req` counts every sending system call on any descriptor (`strace -c`): a proxy's \
sends to its upstream count, and so does the `write` to an eventfd that wakes the loop when pool \
work finishes.\n\nFrom inside asycamore (`--profile`, in a second server run for a second, per \
request of the profile's handler kind):\n\n\
| profile | handler resumes | µs in handler steps | connection resumes | µs in all steps | sends | bytes per send |\n\
|---|---:|---:|---:|---:|---:|---:|"
    );
    for p in profiles {
        if let Some(i) = get(p, Some("asycamore")).and_then(|c| c.inside.as_ref()) {
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
                p.name,
                i.handler_resumes,
                i.handler_us,
                i.connection_resumes,
                i.steps_us,
                i.sends,
                i.bytes_per_send,
            );
        }
    }
    s
}

/// The results as one JSON object.
fn json(results: &Results, seconds: u64) -> String {
    let mut cells = String::new();
    for (i, (profile, server, c)) in results.iter().enumerate() {
        let inside = c.inside.as_ref().map_or("null".into(), |i| {
            format!(
                "{{\"handler_resumes\":{:.3},\"handler_us\":{:.3},\"connection_resumes\":{:.3},\
\"sends\":{:.3},\"bytes_per_send\":{:.1},\"steps_us\":{:.3}}}",
                i.handler_resumes,
                i.handler_us,
                i.connection_resumes,
                i.sends,
                i.bytes_per_send,
                i.steps_us
            )
        });
        let sends = c
            .sends_per_request
            .map_or("null".into(), |v| format!("{v:.3}"));
        let _ = write!(
            cells,
            "{}{{\"profile\":\"{profile}\",\"server\":\"{server}\",\"requests_per_sec\":{:.1},\
\"cpu_us_per_request\":{:.3},\"errors\":{},\"open_loop_rate\":{:.0},\"p50_us\":{:.1},\
\"p99_us\":{:.1},\"send_lag_p99_us\":{:.1},\"stolen_ms\":{:.0},\"peak_rss_kib\":{},\
\"sends_per_request\":{sends},\"inside\":{inside}}}",
            if i == 0 { "" } else { "," },
            c.rps,
            c.cpu_us,
            c.errors,
            c.open_rate,
            c.p50_us,
            c.p99_us,
            c.lag_p99_us,
            c.stolen_ms,
            c.hwm_kib,
        );
    }
    format!(
        "{{\"machine\":\"{}\",\"seconds\":{seconds},\"cells\":[{cells}]}}\n",
        machine().replace('"', "'")
    )
}

/// The chart: server CPU per request, one group per profile.
fn svg(results: &Results, profiles: &[Profile], servers: &[&str]) -> String {
    let groups: Vec<Group> = profiles
        .iter()
        .map(|p| Group {
            label: p.name.to_owned(),
            values: servers
                .iter()
                .map(|s| find(results, p.name, s).map(|c| c.cpu_us))
                .collect(),
        })
        .collect();
    let first = servers.first().copied().unwrap_or("asycamore");
    let title = format!(
        "Server CPU µs per request by application profile, 1 core; each group on its own \
scale, ratio to {first} above each bar (lower is cheaper)"
    );
    grouped_bars(&title, servers, &groups, "µs/req", |v| format!("{v:.1}"))
}

/// The `profiles` subcommand.
///
/// # Errors
/// A usage error for a bad flag; a failure if a build fails, a server does not start or the
/// load tool gives no report.
pub fn main(args: ProfilesArgs) -> Result<(), ToolError> {
    let seconds = args.duration.get();
    if seconds.is_zero() || seconds.subsec_nanos() != 0 {
        return Err(ToolError::Usage(
            "--duration must be a whole number of seconds".into(),
        ));
    }
    let seconds = seconds.as_secs();
    let profiles: Vec<Profile> = match &args.profiles {
        Some(list) => list
            .split(',')
            .map(|name| {
                PROFILES
                    .iter()
                    .find(|p| p.name == name.trim())
                    .copied()
                    .ok_or_else(|| {
                        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
                        format!("unknown profile {name}; choose from {}", names.join(", "))
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(ToolError::Usage)?,
        None => PROFILES.to_vec(),
    };
    let servers: Vec<&'static str> = match &args.servers {
        Some(list) => list
            .split(',')
            .map(|name| {
                SERVERS
                    .iter()
                    .find(|s| **s == name.trim())
                    .copied()
                    .ok_or_else(|| format!("unknown server {name}; choose asycamore, hyper"))
            })
            .collect::<Result<_, _>>()
            .map_err(ToolError::Usage)?,
        None => SERVERS.to_vec(),
    };
    let _ = asycamore::executor::net::raise_fd_limit();
    let bins = build(&args.repo, &servers, args.no_build)?;
    // Rounds go over every cell in turn, so a stretch of a noisy machine hits many cells a
    // little rather than one cell a lot.
    let mut rounds: Results = Vec::new();
    for _ in 0..args.repeat.max(1) {
        for profile in &profiles {
            for (server, cell) in measure(&bins, profile, &servers, seconds)? {
                if !args.json {
                    eprintln!(
                        "{:>15} {server:>9}: {:>8.0} req/s {:>7.2} µs CPU/req  p50 {:.0} µs p99 {:.0} µs \
(stolen {:.0} ms)  RSS {} KiB  sends/req {}{}",
                        profile.name,
                        cell.rps,
                        cell.cpu_us,
                        cell.p50_us,
                        cell.p99_us,
                        cell.stolen_ms,
                        cell.hwm_kib,
                        cell.sends_per_request
                            .map_or("—".into(), |v| format!("{v:.2}")),
                        if cell.errors > 0 {
                            format!("  {} errors", cell.errors)
                        } else {
                            String::new()
                        }
                    );
                }
                rounds.push((profile.name, server, cell));
            }
        }
    }
    let mut results = medians(rounds);
    results.sort_by_key(|(p, s, _)| {
        (
            profiles.iter().position(|x| x.name == *p),
            servers.iter().position(|x| x == s),
        )
    });
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let md = markdown(&results, &profiles, &servers, seconds, args.repeat.max(1));
    let write = |name: &str, text: &str| -> Result<(), String> {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("profiles.md", &md)?;
    write("profiles.svg", &svg(&results, &profiles, &servers))?;
    let json = json(&results, seconds);
    write("profiles.json", &json)?;
    if args.json {
        print!("{json}");
    } else {
        println!("{md}");
        println!(
            "profiles: wrote profiles.md, profiles.svg and profiles.json to {}",
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strace_summaries_and_the_servers_own_profile() {
        let summary = "% time     seconds  usecs/call     calls    errors syscall\n\
------ ----------- ----------- --------- --------- ----------------\n\
 90.00    0.000900           3       300           sendto\n\
 10.00    0.000100           1        12         2 writev\n\
  0.00    0.000000           0         5           read\n\
------ ----------- ----------- --------- --------- ----------------\n\
100.00    0.001000           3       317         2 total\n";
        assert_eq!(strace_sends(summary), 312);
        // The lines as `src/main.rs` prints them at exit under `--profile`.
        let report = "worker 0: 2 connections, 100 requests, responses 1xx-5xx [0, 100, 0, 0, 0], \
0 timeouts, 0 panics\n  loop: 9 turns, 9 polls, 1.00 events per poll, 9 resumes; time in poll \
0.075s (94.7%), in steps 0.004s (5.3%)\n  resumes of connection: 9\n  sends: 100 calls, 1700 \
bytes per call\n  requests of bytes: 50; per request 1.00 handler resumes, 5.29 µs in handler \
steps, 1.00 connection resumes, 1.00 sends; 1700 bytes per send\n";
        let inside = parse_inside(report, "bytes").expect("parsed");
        assert_eq!(
            inside,
            Inside {
                handler_resumes: 1.0,
                handler_us: 5.29,
                connection_resumes: 1.0,
                sends: 1.0,
                bytes_per_send: 1700.0,
                steps_us: 0.004 * 1e6 / 100.0,
            }
        );
        assert_eq!(parse_inside(report, "sleep"), None);
    }

    #[test]
    fn reads_the_load_tools_json() {
        let text = "{\"requests_per_sec\":100.5,\"responses\":{\"1xx\":0,\"2xx\":9,\"3xx\":0,\
\"4xx\":1,\"5xx\":2},\"errors\":{\"connect\":1,\"read\":0,\"malformed\":0,\"timeout\":3},\
\"latency_us\":{\"p50\":10.0,\"p99\":20.5},\"send_lag_us\":{\"p50\":0.2,\"p99\":1.5}}";
        assert_eq!(json_number(text, "requests_per_sec"), Some(100.5));
        assert_eq!(json_nested(text, "latency_us", "p99"), Some(20.5));
        assert_eq!(json_nested(text, "send_lag_us", "p99"), Some(1.5));
        assert_eq!(load_errors(text), 4 + 3);
    }

    #[test]
    fn each_cell_keeps_its_round_of_median_cpu() {
        let cell = |cpu_us| Cell {
            cpu_us,
            ..Cell::default()
        };
        let rounds: Results = vec![
            ("tiny", "hyper", cell(9.0)),
            ("tiny", "asycamore", cell(3.0)),
            ("tiny", "asycamore", cell(1.0)),
            ("tiny", "asycamore", cell(2.0)),
        ];
        let results = medians(rounds);
        assert_eq!(results.len(), 2);
        assert_eq!(
            find(&results, "tiny", "asycamore").map(|c| c.cpu_us),
            Some(2.0)
        );
        assert_eq!(find(&results, "tiny", "hyper").map(|c| c.cpu_us), Some(9.0));
    }

    #[test]
    fn every_profile_names_a_known_handler_kind() {
        for p in PROFILES {
            assert!(
                ["hello", "bytes", "sleep", "blocking", "proxy"].contains(&p.kind),
                "{}",
                p.name
            );
            assert!(p.target.starts_with('/'));
        }
    }
}
