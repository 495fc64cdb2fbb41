//! The demo server as real clients see it: curl and Python's `http.client`, and the binary's
//! command line.

mod util;

use std::process::Command;

use util::{roundtrip, serve_demo, spawn_server};

/// Runs a command and returns its stdout; panics with its stderr if it fails.
#[track_caller]
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

#[test]
fn curl_gets_hello_echoes_and_uploads_chunked() {
    let addr = serve_demo();
    let base = format!("http://{addr}");
    let hello = run(Command::new("curl").args(["-sS", "--fail", &format!("{base}/")]));
    assert_eq!(hello, b"Hello, World!");

    let echo = run(Command::new("curl").args([
        "-sS",
        "--fail",
        "--data-binary",
        "ping pong",
        &format!("{base}/echo"),
    ]));
    assert_eq!(echo, b"ping pong");

    let dir = std::env::temp_dir().join(format!("asycamore-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("upload.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let upload = run(Command::new("curl").args([
        "-sS",
        "--fail",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{base}/upload"),
    ]));
    let text = String::from_utf8(upload).unwrap();
    assert!(text.contains("\"bytes\": 300000"), "{text}");
    let crc = {
        let mut c = asycamore::crc32::Crc32::default();
        c.update(&data);
        c.value()
    };
    assert!(
        text.contains(&format!("\"crc32\": \"{crc:08x}\"")),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn python_http_client_reuses_one_connection() {
    let addr = serve_demo();
    let script = format!(
        r#"
import http.client
c = http.client.HTTPConnection("127.0.0.1", {port}, timeout=10)
for i in range(20):
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"Hello, World!", i
    c.request("POST", "/echo", body=b"x" * (i * 1000))
    r = c.getresponse()
    assert r.read() == b"x" * (i * 1000), i
c.request("POST", "/upload", body=iter([b"abc", b"defg"]), encode_chunked=True,
          headers={{"Transfer-Encoding": "chunked"}})
r = c.getresponse()
body = r.read().decode()
assert r.status == 200 and '"bytes": 7' in body and '"chunks": 2' in body, body
c.request("GET", "/nope")
r = c.getresponse()
assert r.status == 404, r.status
r.read()
print("ok")
"#,
        port = addr.port()
    );
    let out = run(Command::new("python3").arg("-c").arg(script));
    assert_eq!(out, b"ok\n");
}

#[test]
fn a_bad_flag_exits_2_with_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-flag"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--head-timeout", "-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--app", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown app"));

    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--poller", "kqueue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown poller"));
}

#[test]
fn an_address_in_use_exits_2_with_one_clear_line() {
    let server = spawn_server(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--bind", &server.addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot listen"), "{err}");
}

#[test]
fn help_lists_the_flags_with_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--app",
        "--head-timeout",
        "--keepalive-timeout",
        "--max-head",
        "default",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn the_access_log_gets_one_common_log_format_line_per_request() {
    let dir = std::env::temp_dir().join(format!("asycamore-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("access.log");
    let server = spawn_server(&["--access-log", log.to_str().unwrap()]);
    let base = format!("http://{}", server.addr);
    run(Command::new("curl").args(["-sS", &format!("{base}/"), &format!("{base}/missing?q=1")]));
    // Lines reach the file within the flush interval.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{text}");
    assert!(lines[0].ends_with("] \"GET / HTTP/1.1\" 200 13"), "{text}");
    assert!(
        lines[1].ends_with("\"GET /missing?q=1 HTTP/1.1\" 404 10"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// curl holds a large body back until `100 Continue` (up to `--expect100-timeout`, 1 s by
/// default): `/echo`, which streams its answer while it reads, must send the 100 before its
/// 200 rather than leave curl waiting. The timeout is raised so that a missing 100 shows as a
/// failure, not as a second of delay.
#[test]
fn curl_posting_2mb_to_echo_gets_100_continue_at_once() {
    let addr = serve_demo();
    let dir = std::env::temp_dir().join(format!("asycamore-curl-expect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("2mb.bin");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--fail",
            "--expect100-timeout",
            "30",
            "--max-time",
            "20",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .arg(format!("http://{addr}/echo"))
        .output()
        .expect("run curl");
    let _ = std::fs::remove_dir_all(&dir);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {log}");
    assert!(
        log.contains("> Expect: 100-continue"),
        "curl did not ask: {log}"
    );
    assert!(
        log.contains("< HTTP/1.1 100 Continue"),
        "no 100 Continue: {log}"
    );
    assert!(
        out.stdout == data,
        "the echo differs ({} bytes back)",
        out.stdout.len()
    );
}

#[test]
fn sizes_and_durations_take_units() {
    let server = spawn_server(&[
        "--head-timeout",
        "300ms",
        "--max-head",
        "1K",
        "--output-high-water",
        "64K",
        "--max-body",
        "1M",
        "--grace",
        "2s",
    ]);
    // --max-head 1K: a 2 KiB head is too large.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(2048)
    );
    assert_eq!(roundtrip(server.addr, big.as_bytes()).status, 431);
    // --head-timeout 300ms: a head left unfinished is answered 408 long before the default 10 s.
    let started = std::time::Instant::now();
    let r = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost:");
    assert_eq!(r.status, 408);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    for (flag, value) in [
        ("--max-body", "1.5M"),
        ("--head-timeout", "10 s"),
        ("--grace", "-1"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.ends_with("Run asycamore --help for the flags.\n"),
            "{err}"
        );
    }
}
