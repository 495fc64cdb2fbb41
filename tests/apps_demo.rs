//! The small demo applications of the default binary: the timer (`/sleep`), the health probe
//! (`/healthz`) and the status page (`/_status`).

mod util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Reader, connect, roundtrip, spawn_server};

#[test]
fn a_hundred_sleeps_share_one_loop() {
    let server = spawn_server(&["--workers", "1"]);
    let start = Instant::now();
    let mut streams: Vec<_> = (0..100)
        .map(|_| {
            let mut s = connect(server.addr);
            s.write_all(b"GET /sleep?ms=500 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    for s in streams.drain(..) {
        let r = Reader::new(s).response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"slept 500 ms\n");
    }
    let took = start.elapsed();
    // A loop that blocked in each sleep would need 100 × 0.5 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_millis(500), "took {took:?}");
}

#[test]
fn sleep_refuses_a_bad_or_too_long_duration() {
    let server = spawn_server(&[]);
    for query in ["", "?ms=", "?ms=-1", "?ms=+5", "?ms=abc", "?ms=60001"] {
        let request = format!("GET /sleep{query} HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = roundtrip(server.addr, request.as_bytes());
        assert_eq!(r.status, 400, "{query}");
    }
    let r = roundtrip(server.addr, b"GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    // Query values are percent-decoded: %31%30 is 10.
    let r = roundtrip(
        server.addr,
        b"GET /sleep?ms=%31%30 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"slept 10 ms\n"[..]));
    let r = roundtrip(
        server.addr,
        b"GET /sleep?ms=%ff HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(r.status, 400, "not UTF-8");
}

#[test]
fn healthz_answers_ok() {
    let server = spawn_server(&[]);
    let r = roundtrip(server.addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok\n");
}

#[test]
fn status_is_json_with_the_counters() {
    let server = spawn_server(&["--workers", "1"]);
    for _ in 0..3 {
        assert_eq!(
            roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
            200
        );
    }
    let r = roundtrip(server.addr, b"GET /_status HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Python checks the JSON and prints the fields we look for.
    let script = "import json,sys; d=json.load(sys.stdin); e=d['executor']; \
        print(d['requests'], d['responses']['2xx'], d['connections_open'], d['timeouts'], \
        d['bytes_in'], d['bytes_out'], e['turns'], e['polls'], e['events_per_poll'], \
        e['resumes'], e['poll_seconds'], e['run_seconds'], len(e['resumes_by_kind']))";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    python.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not JSON: {}",
        String::from_utf8_lossy(&r.body)
    );
    let fields: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields.len(), 13);
    assert!(fields[0] >= 4.0, "requests {}", fields[0]); // three hellos and this one
    assert!(fields[1] >= 3.0, "2xx {}", fields[1]);
    assert!(fields[2] >= 1.0, "open {}", fields[2]);
    assert!(fields[4] > 0.0 && fields[5] > 0.0, "bytes {fields:?}");
}

#[test]
fn status_lists_every_worker() {
    let server = spawn_server(&["--workers", "2"]);
    for _ in 0..6 {
        assert_eq!(
            roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
            200
        );
    }
    // Workers publish a few times a second.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let r = roundtrip(server.addr, b"GET /_status HTTP/1.1\r\nHost: t\r\n\r\n");
    let script = "import json,sys; d=json.load(sys.stdin); w=d['workers']; \
        print(len(w), sum(x['requests'] for x in w), [x['worker'] for x in w])";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    python.stdin.take().unwrap().write_all(&r.body).unwrap();
    let out = python.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "not JSON: {}",
        String::from_utf8_lossy(&r.body)
    );
    let mut parts = text.split_whitespace();
    assert_eq!(parts.next(), Some("2"), "{text}");
    let total: u64 = parts.next().unwrap().parse().unwrap();
    assert!(total >= 6, "{text}");
    assert!(text.contains("[0, 1]"), "{text}");
}

#[test]
fn kv_is_one_store_for_every_worker() {
    let server = spawn_server(&["--workers", "2"]);
    let put = |key: &str, value: &str| {
        let request = format!(
            "PUT /kv/{key} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{value}",
            value.len()
        );
        roundtrip(server.addr, request.as_bytes()).status
    };
    let get = |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        roundtrip(server.addr, request.as_bytes())
    };
    // Every request on a new connection: the kernel spreads them over both workers, and each
    // must see what the other stored.
    assert_eq!(put("k", "v0"), 201);
    for i in 1..=20 {
        assert_eq!(put("k", &format!("v{i}")), 204, "replaced");
        let r = get("/kv/k");
        assert_eq!(
            (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            (200, format!("v{i}")),
            "a value written through one worker is read through any"
        );
    }
    assert_eq!(put("other", "x"), 201);
    assert_eq!(get("/kv/").body, b"k\nother\n", "the list");
    assert_eq!(get("/kv/missing").status, 404);
    let delete = roundtrip(server.addr, b"DELETE /kv/k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(delete.status, 204);
    assert_eq!(get("/kv/k").status, 404);
    // A value over 1 MiB is refused before it is read.
    let big = roundtrip(
        server.addr,
        b"PUT /kv/big HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n",
    );
    assert_eq!(big.status, 413);
    let post = roundtrip(
        server.addr,
        b"POST /kv/k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(
        post.header("allow"),
        Some("GET, HEAD, PUT, DELETE, OPTIONS")
    );
}
