//! The access log on the real binary: no line lost at exit, logrotate's move-and-signal, the
//! three formats, and requests the connection rejected before they reached an application.

mod util;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{
    Reader, connect, get, lines_of, scratch_dir, send_signal, spawn_server, wait_exit, wait_until,
};

/// Sends `count` requests for `/?n=<first + i>` over `connections` keep-alive connections at
/// once; every one must be answered 200.
fn numbered_requests(addr: SocketAddr, first: usize, count: usize, connections: usize) {
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                let mut reader = Reader::new(stream.try_clone().expect("clone"));
                for n in (first + c..first + count).step_by(connections) {
                    write!(stream, "GET /?n={n} HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
                    assert_eq!(reader.response().status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
}

/// The numbers `n` of the `/?n=` requests in `lines`, checking none appears twice.
#[track_caller]
fn numbers(lines: &[String]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    for line in lines {
        if let Some(rest) = line.split("\"GET /?n=").nth(1) {
            let n: usize = rest.split(' ').next().unwrap().parse().expect("a number");
            assert!(seen.insert(n), "logged twice: {line}");
        }
    }
    seen
}

/// Sends raw bytes and returns the status of the response the server answers with.
fn raw_status(addr: SocketAddr, bytes: &[u8]) -> u16 {
    let mut c = connect(addr);
    c.write_all(bytes).expect("send");
    Reader::new(c).response().status
}

#[test]
fn every_request_answered_before_sigterm_is_in_the_log() {
    let dir = scratch_dir("logs-exit");
    let log = dir.join("access.log");
    let mut server = spawn_server(&["--workers", "2", "--access-log", log.to_str().unwrap()]);
    const N: usize = 600;
    numbered_requests(server.addr, 0, N, 6);
    // And one the connection rejects itself.
    assert_eq!(
        raw_status(server.addr, b"GET /bad HTTP/1.1\r\nno colon here\r\n\r\n"),
        400
    );
    // At once: the lines are still in the workers' buffers (handed off once a second).
    send_signal(server.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    let lines = lines_of(&log);
    eprintln!(
        "SIGTERM: {} lines logged for {} requests",
        lines.len(),
        N + 1
    );
    assert_eq!(lines.len(), N + 1, "lines logged for {} requests", N + 1);
    assert_eq!(numbers(&lines), (0..N).collect());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /bad HTTP/1.1\" 400 ")),
        "{:?}",
        lines.iter().find(|l| l.contains("400"))
    );
}

#[test]
fn logrotate_moves_the_file_and_sigusr1_opens_a_new_one_losing_nothing() {
    let dir = scratch_dir("logs-rotate");
    let log = dir.join("access.log");
    let rotated = dir.join("access.log.1");
    let mut server = spawn_server(&["--workers", "2", "--access-log", log.to_str().unwrap()]);
    numbered_requests(server.addr, 0, 200, 4);
    // Once the workers have handed these to the writer (once a second), they are in the file
    // that is about to move, and must stay there.
    wait_until(
        "the first lines are written",
        Duration::from_secs(10),
        || lines_of(&log).len() == 200,
    );
    // What logrotate does: rename, then signal (`postrotate`).
    std::fs::rename(&log, &rotated).expect("move the log away");
    numbered_requests(server.addr, 200, 100, 4); // may land in either file
    send_signal(server.child.id(), libc::SIGUSR1);
    wait_until("a new file at the path", Duration::from_secs(10), || {
        log.exists()
    });
    numbered_requests(server.addr, 300, 200, 4); // the new file's
    send_signal(server.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    let old = numbers(&lines_of(&rotated));
    let new = numbers(&lines_of(&log));
    eprintln!(
        "logrotate: {} lines in the moved file, {} in the new one, of 500 requests",
        old.len(),
        new.len()
    );
    assert!(old.is_disjoint(&new), "a line in both files");
    assert_eq!(
        old.len() + new.len(),
        500,
        "old {} new {}",
        old.len(),
        new.len()
    );
    assert!(
        (300..500).all(|n| new.contains(&n)),
        "a line after the reopen in the old file"
    );
    assert!(
        (0..200).all(|n| old.contains(&n)),
        "a line written before the move left it"
    );
}

#[test]
fn combined_lines_carry_referer_user_agent_and_microseconds() {
    let dir = scratch_dir("logs-combined");
    let log = dir.join("access.log");
    let mut server = spawn_server(&[
        "--workers",
        "1",
        "--access-log",
        log.to_str().unwrap(),
        "--access-log-format",
        "combined",
        "--access-log-duration",
        "--head-timeout",
        "300ms",
    ]);
    let r = util::roundtrip(
        server.addr,
        b"GET /sleep?ms=50 HTTP/1.1\r\nHost: t\r\nReferer: http://example.test/\"q\"\r\nUser-Agent: probe/1.0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    // A head that never ends: 408 after the head timeout, logged with its request line.
    let mut slow = connect(server.addr);
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut reply = String::new();
    slow.read_to_string(&mut reply)
        .expect("the 408 and the close");
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    // A request line too long: 414, logged without it.
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    assert_eq!(raw_status(server.addr, long.as_bytes()), 414);
    send_signal(server.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    let lines = lines_of(&log);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let sleep = &lines[0];
    let (head, micros) = sleep.rsplit_once(' ').unwrap();
    assert!(
        head.ends_with(
            "\"GET /sleep?ms=50 HTTP/1.1\" 200 12 \"http://example.test/\\\"q\\\"\" \"probe/1.0\""
        ),
        "{sleep}"
    );
    let micros: u64 = micros.parse().expect("microseconds");
    assert!((40_000..5_000_000).contains(&micros), "{sleep}");
    let timed_out = lines
        .iter()
        .find(|l| l.contains("\" 408 "))
        .expect("the 408");
    assert!(
        timed_out.contains("\"GET /slow HTTP/1.1\" 408 "),
        "{timed_out}"
    );
    let waited: u64 = timed_out.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(waited >= 250_000, "{timed_out}");
    let too_long = lines
        .iter()
        .find(|l| l.contains("\" 414 "))
        .expect("the 414");
    assert!(too_long.contains("] \"-\" 414 "), "{too_long}");
}

#[test]
fn json_lines_parse_as_json_with_the_usual_keys() {
    let dir = scratch_dir("logs-json");
    let log = dir.join("access.log");
    // One worker: one buffer, so the lines keep the order of the requests.
    let mut server = spawn_server(&[
        "--workers",
        "1",
        "--access-log",
        log.to_str().unwrap(),
        "--access-log-format",
        "json",
    ]);
    let r = util::roundtrip(
        server.addr,
        b"GET /missing?q=\"1\" HTTP/1.1\r\nHost: t\r\nUser-Agent: a\\b\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    assert_eq!(raw_status(server.addr, b"GET / HTTP/9.9\r\n\r\n"), 505);
    assert_eq!(get(server.addr, "/").status, 200);
    send_signal(server.child.id(), libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    let text = std::fs::read_to_string(&log).expect("the log");
    let script = r#"
import json, sys
keys = ["remote_addr", "time", "request", "status", "bytes", "referer", "user_agent", "duration_us"]
for line in sys.stdin:
    d = json.loads(line)
    assert list(d) == keys, list(d)
    print(d["status"], d["request"], d["user_agent"], d["referer"], d["remote_addr"])
"#;
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = parsed.lines().collect();
    assert_eq!(
        rows,
        [
            "404 GET /missing?q=\"1\" HTTP/1.1 a\\b - 127.0.0.1",
            "505 GET / HTTP/9.9 - - 127.0.0.1",
            "200 GET / HTTP/1.1 - - 127.0.0.1",
        ],
        "{text}"
    );
}

#[test]
fn an_unknown_log_format_is_one_line_and_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--access-log", "-", "--access-log-format", "apache"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown access log format"), "{err}");
}
