//! Signals on the real binary, with every optional thread running (access-log writer, pool,
//! several workers): a shutdown signal lets an in-flight request finish and exits 0, the reopen
//! signals never kill, and a signal that arrives while the server is still starting waits for it.

mod util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{
    Reader, connect, get, metric, scratch_dir, send_signal, spawn_server, wait_exit, wait_until,
};

/// Every thread the binary can start: the log writer, the pool, two workers.
fn all_threads(log: &std::path::Path) -> Vec<String> {
    [
        "--access-log",
        log.to_str().expect("path"),
        "--threads",
        "4",
        "--workers",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The handled signals, as bits of `/proc/PID/status`'s `SigBlk` mask (bit n-1 for signal n).
fn handled_mask() -> u64 {
    [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ]
    .iter()
    .map(|&s| 1u64 << (s - 1))
    .sum()
}

/// `SigBlk` of one task (thread) of process `pid`.
fn blocked(pid: u32, task: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{task}/status")).ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

#[test]
fn every_thread_blocks_the_handled_signals() {
    let dir = scratch_dir("signals-threads");
    let log = dir.join("access.log");
    let server = spawn_server(&args(&all_threads(&log)));
    // Use the pool once, so its threads have certainly started too.
    assert_eq!(get(server.addr, "/blocking?ms=1").status, 200);
    let pid = server.child.id();
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let task = task.expect("task").file_name().into_string().expect("name");
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{task}/comm"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let Some(mask) = blocked(pid, &task) else {
            continue; // the thread ended meanwhile
        };
        // While it sits in sigwait(2) the kernel lifts the waited set from the signal
        // thread's mask: that is how it receives them, and it runs no default action.
        if name != "signals" {
            assert_eq!(
                mask & handled_mask(),
                handled_mask(),
                "thread {name} ({task}) leaves a handled signal unblocked: {mask:x}"
            );
        }
        names.push(name);
    }
    for expected in [
        "signals",
        "access-log",
        "pool-0",
        "pool-3",
        "worker-0",
        "worker-1",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "no {expected} in {names:?}"
        );
    }
}

/// Sends `/sleep?ms=1500`, waits until the server has counted it, then sends `signal`: the
/// response is a 200, the exit code 0, and the request is in the log.
fn in_flight_request_survives(signal: i32) {
    let dir = scratch_dir(&format!("signals-in-flight-{signal}"));
    let log = dir.join("access.log");
    let mut server = spawn_server(&args(&all_threads(&log)));
    let addr = server.addr;
    let client = std::thread::spawn(move || {
        let mut c = connect(addr);
        c.write_all(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("send");
        let mut reader = Reader::new(c);
        let r = reader.response();
        (r.status, r.header("connection").map(str::to_owned))
    });
    // The sleep and this scrape: both counted (each worker publishes a few times a second).
    wait_until("the sleep is in flight", Duration::from_secs(10), || {
        let page = String::from_utf8_lossy(&get(addr, "/metrics").body).into_owned();
        metric(&page, "asycamore_requests_total").unwrap_or(0.0) >= 2.0
    });
    send_signal(server.child.id(), signal);
    let (status, connection) = client.join().expect("client");
    assert_eq!(status, 200, "signal {signal}");
    assert_eq!(connection.as_deref(), Some("close"), "signal {signal}");
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0),
        "signal {signal}"
    );
    let lines = util::lines_of(&log);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /sleep?ms=1500 HTTP/1.1\" 200")),
        "signal {signal}: {lines:?}"
    );
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_with_every_thread_running() {
    in_flight_request_survives(libc::SIGTERM);
}

#[test]
fn sigint_lets_an_in_flight_request_finish_with_every_thread_running() {
    in_flight_request_survives(libc::SIGINT);
}

#[test]
fn sigquit_lets_an_in_flight_request_finish_with_every_thread_running() {
    in_flight_request_survives(libc::SIGQUIT);
}

#[test]
fn sighup_and_sigusr1_reopen_the_log_and_do_not_stop_the_server() {
    let dir = scratch_dir("signals-reopen");
    let log = dir.join("access.log");
    let mut server = spawn_server(&args(&all_threads(&log)));
    for signal in [libc::SIGHUP, libc::SIGUSR1, libc::SIGHUP, libc::SIGUSR1] {
        send_signal(server.child.id(), signal);
        assert_eq!(get(server.addr, "/").status, 200, "after signal {signal}");
    }
    assert!(server.child.try_wait().expect("try_wait").is_none());
    send_signal(server.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    assert_eq!(util::lines_of(&log).len(), 4);
}

/// Starts the binary and returns as soon as its `main` has blocked the handled signals — the
/// earliest moment a signal is ours to handle — long before it listens.
fn start_and_catch_main(dir: &std::path::Path) -> (std::process::Child, std::net::SocketAddr) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], util::free_port()));
    let log = dir.join("access.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--bind")
        .arg(addr.to_string())
        .arg("--quiet")
        .args(all_threads(&log))
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn asycamore");
    let pid = child.id();
    let main_thread = pid.to_string();
    wait_until("main blocks the signals", Duration::from_secs(10), || {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        blocked(pid, &main_thread).is_some_and(|m| m & handled_mask() == handled_mask())
    });
    (child, addr)
}

#[test]
fn a_signal_during_start_up_waits_for_the_server() {
    let dir = scratch_dir("signals-start-up");
    // Reopen signals while starting: it comes up and serves.
    for _ in 0..3 {
        let (mut child, addr) = start_and_catch_main(&dir);
        send_signal(child.id(), libc::SIGHUP);
        send_signal(child.id(), libc::SIGUSR1);
        wait_until("the server listens", Duration::from_secs(10), || {
            assert!(child.try_wait().expect("try_wait").is_none(), "killed");
            std::net::TcpStream::connect(addr).is_ok()
        });
        assert_eq!(get(addr, "/").status, 200);
        send_signal(child.id(), libc::SIGTERM);
        assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    }
    // A shutdown signal while starting: a graceful shutdown as soon as it can, exit 0 — not
    // death by the signal's default action (143).
    for _ in 0..3 {
        let (mut child, _) = start_and_catch_main(&dir);
        send_signal(child.id(), libc::SIGTERM);
        assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    }
}
