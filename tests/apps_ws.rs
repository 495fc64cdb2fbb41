//! The WebSocket echo at `/ws` (and the upgrade under it) over real sockets: the handshake and
//! its refusals, frames that arrive one byte per write, the close codes for an oversized message
//! (1009), bad UTF-8 (1007) and an unmasked frame (1002), the upgrade idle timeout, a graceful
//! shutdown (1001), `/metrics` and the access log, curl's 101, Python's `websockets` client
//! with messages up to 1 MiB, and headless Chromium echoing 1,000 messages from a page served by
//! `/files/`.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore::apps::WsEcho;
use asycamore::config::Config;
use asycamore::middleware::Router;
use asycamore::ws::{Opcode, write_frame, write_frame_masked};
use util::{Reader, connect, get, metric, read_head, send_signal, spawn_server, tool, wait_exit};

/// RFC 6455 §1.3's example key and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn handshake() -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n"
    )
}

/// A server with only `/ws`, echoing messages up to 1,000 bytes, with `config`.
fn small_echo(config: Config) -> SocketAddr {
    util::serve(config, || {
        Rc::new(Router::new().exact("/ws", WsEcho::new(1000)))
    })
}

/// Opens a WebSocket: writes the handshake and `then` together, checks the 101.
fn open(addr: SocketAddr, then: &[u8]) -> TcpStream {
    let mut stream = connect(addr);
    let mut bytes = handshake().into_bytes();
    bytes.extend_from_slice(then);
    stream.write_all(&bytes).expect("write");
    let head = read_head(&mut stream);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
        "{head}"
    );
    assert!(head.contains("Upgrade: websocket\r\n"), "{head}");
    stream
}

/// Everything the server sends until it closes.
fn rest(mut stream: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read to the close");
    out
}

/// A close frame as the server sends it: unmasked, the code and no reason... or with one.
fn close_code(frame: &[u8]) -> u16 {
    assert_eq!(frame[0], 0x88, "a final close frame: {frame:?}");
    u16::from_be_bytes([frame[2], frame[3]])
}

#[test]
fn echoes_frames_that_arrive_a_byte_at_a_time() {
    let addr = small_echo(Config::default());
    let mut wire = Vec::new();
    write_frame_masked(&mut wire, false, Opcode::Text, b"Hel", [1, 2, 3, 4]);
    write_frame_masked(&mut wire, true, Opcode::Ping, b"there?", [5, 6, 7, 8]);
    write_frame_masked(&mut wire, true, Opcode::Continuation, b"lo", [9, 9, 9, 9]);
    write_frame_masked(&mut wire, true, Opcode::Binary, &[0, 255, 7], [3, 1, 4, 1]);
    write_frame_masked(&mut wire, true, Opcode::Close, b"\x03\xe8bye", [2, 7, 1, 8]);
    // The first byte goes with the handshake (a client may send frames at once); the rest one
    // per write.
    let mut stream = open(addr, &wire[..1]);
    for b in &wire[1..] {
        stream.write_all(&[*b]).expect("write");
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut expected = Vec::new();
    write_frame(&mut expected, false, Opcode::Text, b"Hel");
    write_frame(&mut expected, true, Opcode::Pong, b"there?");
    write_frame(&mut expected, true, Opcode::Continuation, b"lo");
    write_frame(&mut expected, true, Opcode::Binary, &[0, 255, 7]);
    expected.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
    assert_eq!(rest(stream), expected);
}

#[test]
fn breaches_close_with_their_codes() {
    let addr = small_echo(Config::default());
    // Larger than the 1,000-byte limit: 1009, before any of it is echoed.
    let mut big = Vec::new();
    write_frame_masked(&mut big, true, Opcode::Binary, &[7; 1001], [1, 2, 3, 4]);
    assert_eq!(close_code(&rest(open(addr, &big))), 1009);
    // Invalid UTF-8 in a text message, caught in its first bytes: 1007.
    let mut bad = Vec::new();
    write_frame_masked(&mut bad, true, Opcode::Text, b"\xff\xfe", [1, 2, 3, 4]);
    let out = rest(open(addr, &bad));
    // The header was echoed before the payload broke: no room for a close frame then.
    assert!(
        out.is_empty() || out.starts_with(&[0x81, 2]) || close_code(&out) == 1007,
        "{out:?}"
    );
    // An unmasked client frame: a protocol error, 1002 (§5.1).
    let mut unmasked = Vec::new();
    write_frame(&mut unmasked, true, Opcode::Text, b"hi");
    assert_eq!(close_code(&rest(open(addr, &unmasked))), 1002);
}

#[test]
fn refused_handshakes_answer_as_rfc_6455_says() {
    let addr = small_echo(Config::default());
    let ask = |request: String| {
        let mut stream = connect(addr);
        stream.write_all(request.as_bytes()).expect("write");
        Reader::new(stream).response()
    };
    // No Upgrade at all: 426 naming the protocol and version.
    let r = ask("GET /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into());
    assert_eq!(r.status, 426);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    // Upgrade is hop-by-hop, so Connection lists it (RFC 9110 §7.8).
    assert_eq!(r.header("connection"), Some("upgrade, close"));
    // Another version: 426 with the one we speak (§4.4).
    let r = ask(handshake().replace("Version: 13", "Version: 8"));
    assert_eq!(
        (r.status, r.header("sec-websocket-version")),
        (426, Some("13"))
    );
    // No key: 400.
    let r = ask(handshake().replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), ""));
    assert_eq!(r.status, 400);
    // HTTP/1.0 cannot upgrade (RFC 9110 §7.8).
    let r = ask(handshake().replace("HTTP/1.1", "HTTP/1.0"));
    assert_eq!(r.status, 400);
    // A body: refused rather than upgraded after it.
    let r = ask(handshake().replace("\r\n\r\n", "\r\nContent-Length: 2\r\n\r\nhi"));
    assert_eq!(r.status, 400);
    // Not a GET: 405 from the router.
    let r = ask(handshake().replace("GET", "POST"));
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
    // HEAD: what a GET without the upgrade would get, without its content.
    let mut stream = connect(addr);
    stream
        .write_all(b"HEAD /ws HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("write");
    let r = Reader::new(stream).response_to("HEAD").expect("a response");
    assert_eq!((r.status, r.header("upgrade")), (426, Some("websocket")));
    assert!(r.body.is_empty());
}

#[test]
fn expect_100_continue_gets_its_100_before_the_101() {
    let addr = small_echo(Config::default());
    let mut stream = connect(addr);
    let request = handshake().replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let first = read_head(&mut stream);
    assert_eq!(first, "HTTP/1.1 100 Continue\r\n\r\n");
    let second = read_head(&mut stream);
    assert!(second.starts_with("HTTP/1.1 101 "), "{second}");
}

#[test]
fn a_close_1001_follows_a_message_when_the_server_shuts_down() {
    // The echo is at a message boundary only once the decoder has reported the end of the last
    // frame, which came with the frame's last byte.
    let mut server = spawn_server(&["--workers", "1"]);
    let mut hello = Vec::new();
    write_frame_masked(&mut hello, true, Opcode::Text, b"hello", [1, 2, 3, 4]);
    let mut stream = open(server.addr, &hello);
    let mut echo = [0u8; 7];
    stream.read_exact(&mut echo).expect("the echo");
    assert_eq!(&echo, b"\x81\x05hello");
    send_signal(server.child.id(), libc::SIGTERM);
    let out = rest(stream);
    assert_eq!(close_code(&out), 1001, "{out:?}");
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}

#[test]
fn an_idle_upgraded_connection_times_out() {
    let config = Config {
        upgrade_idle_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let addr = small_echo(config);
    let began = Instant::now();
    let out = rest(open(addr, b""));
    // A goodbye before the close: 1001, going away.
    assert_eq!(close_code(&out), 1001, "{out:?}");
    assert!(out.ends_with(b"idle for too long"), "{out:?}");
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "not before the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "closed at the timeout: {took:?}"
    );
}

#[test]
fn shutdown_says_going_away_and_metrics_count_upgrades() {
    let dir = util::scratch_dir("ws-log");
    let log = dir.join("access.log");
    let log_arg = log.to_string_lossy().into_owned();
    let mut server = spawn_server(&["--workers", "1", "--access-log", &log_arg]);
    let mut ping = Vec::new();
    write_frame_masked(&mut ping, true, Opcode::Ping, b"p", [1, 2, 3, 4]);
    let mut stream = open(server.addr, &ping);
    let mut pong = [0u8; 3];
    stream.read_exact(&mut pong).expect("the pong");
    assert_eq!(pong, [0x8a, 1, b'p']);
    let page = String::from_utf8(get(server.addr, "/metrics").body).expect("text");
    assert_eq!(
        metric(&page, "asycamore_upgraded_connections_total"),
        Some(1.0)
    );
    assert_eq!(
        metric(&page, "asycamore_upgraded_connections_open"),
        Some(1.0)
    );
    send_signal(server.child.id(), libc::SIGTERM);
    let out = rest(stream);
    assert_eq!(close_code(&out), 1001, "{out:?}");
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}

/// Python's `websockets` client: 200 messages of mixed sizes up to 1 MiB, text and binary,
/// each echo checked; then a normal close.
#[test]
fn python_websockets_client() {
    let script = r#"
import asyncio, os, random, sys
try:
    import websockets
    from websockets.asyncio.client import connect
except ImportError:
    sys.exit(77)
async def main():
    rng = random.Random(7)
    async with connect(sys.argv[1], max_size=2**21, compression=None) as ws:
        for i in range(200):
            size = rng.choice([0, 1, 125, 126, 65535, 65536, 100_000, 1 << 20])
            if i % 2:
                msg = os.urandom(size)
            else:
                msg = "é" * (size // 2)
            await ws.send(msg)
            got = await ws.recv()
            assert got == msg, (i, size, len(got))
        pong = await ws.ping(b"hi")
        await pong
    print("ok")
asyncio.run(main())
"#;
    let server = spawn_server(&[]);
    let url = format!("ws://{}/ws", server.addr);
    let out = Command::new("python3")
        .args(["-c", script, &url])
        .output()
        .expect("python3 runs");
    if out.status.code() == Some(77) {
        assert!(
            std::env::var_os("CI").is_none(),
            "Python's websockets package is missing (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python_websockets_client (pip install websockets)");
        return;
    }
    assert!(
        out.status.success() && out.stdout.starts_with(b"ok"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page headless Chromium loads from `/files/`: it opens `/ws`, sends 1,000 messages of
/// mixed sizes up to 1 MiB (text and binary, one at a time), checks every echo, and reports
/// through `/kv/chromium`.
const CHROMIUM_PAGE: &str = r#"<!doctype html>
<title>ws</title>
<script>
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.binaryType = "arraybuffer";
const sizes = [0, 1, 125, 126, 1000, 65535, 65536, 100000, 1 << 20];
let i = 0, sent = null, bad = 0;
function message(i) {
  const n = sizes[i % sizes.length];
  if (i % 2) {
    const a = new Uint8Array(n);
    for (let k = 0; k < n; k++) a[k] = (k * 31 + i) & 255;
    return a;
  }
  return "x".repeat(n) + "é".repeat(i % 5);
}
function same(a, b) {
  if (typeof a === "string") return a === b;
  const c = new Uint8Array(b);
  if (c.length !== a.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== c[k]) return false;
  return true;
}
function report(s) { fetch("/kv/chromium", {method: "PUT", body: s}); }
function next() {
  if (i === 1000) { report("ok " + i + " bad " + bad); ws.close(1000); return; }
  sent = message(i);
  ws.send(sent);
}
ws.onopen = next;
ws.onmessage = (e) => { if (!same(sent, e.data)) bad++; i++; next(); };
ws.onerror = () => report("error after " + i);
</script>
"#;

#[test]
fn headless_chromium_echoes_a_thousand_messages() {
    let Some(chromium) = tool(
        "chromium-headless-shell",
        "apt-get install chromium-headless-shell",
    ) else {
        return;
    };
    let root = util::scratch_dir("chromium");
    std::fs::write(root.join("ws.html"), CHROMIUM_PAGE).expect("the page");
    let root_arg = root.to_string_lossy().into_owned();
    let server = spawn_server(&["--root", &root_arg]);
    let profile = root.join("profile");
    // In a process group of its own, so that the browser's helper processes go with it.
    let mut browser = Command::new(chromium)
        .process_group(0)
        .args(["--no-sandbox", "--disable-gpu", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://{}/files/ws.html", server.addr))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let began = Instant::now();
    let verdict = loop {
        let r = get(server.addr, "/kv/chromium");
        if r.status == 200 {
            break String::from_utf8_lossy(&r.body).into_owned();
        }
        if began.elapsed() > Duration::from_secs(120) {
            break "no report from the page within 120 s".to_owned();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    util::kill_process_group(browser.id());
    let _ = browser.wait();
    assert_eq!(verdict, "ok 1000 bad 0");
}

#[test]
fn curl_gets_the_101() {
    let Some(curl) = tool("curl", "apt-get install curl") else {
        return;
    };
    let server = spawn_server(&[]);
    let out = Command::new(curl)
        .args(["-si", "--max-time", "1", "-H", "Connection: Upgrade"])
        .args([
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
        ])
        .args(["-H", &format!("Sec-WebSocket-Key: {KEY}")])
        .arg(format!("http://{}/ws", server.addr))
        .output()
        .expect("curl runs");
    // curl waits on the upgraded stream until --max-time: what matters is what it printed.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}")),
        "{text}"
    );
}

/// A 64 KiB message's echo comes back in one round trip, not after a delayed acknowledgement:
/// the upgraded connection turns Nagle's algorithm off (the server sets `TCP_NODELAY` itself,
/// only on connections that write more than once). With Nagle on, the tail of each echo waits
/// for the client's delayed ACK, 40 ms on Linux, so the median would be at least that.
#[test]
fn large_echoes_are_not_held_back_by_nagle() {
    let server = spawn_server(&[]);
    let mut stream = open(server.addr, b"");
    let payload = vec![7u8; 65536];
    let mut frame = Vec::new();
    write_frame_masked(&mut frame, true, Opcode::Binary, &payload, [1, 2, 3, 4]);
    let mut echo = vec![0u8; 65536 + 10];
    let mut times = Vec::new();
    for _ in 0..15 {
        let began = Instant::now();
        stream.write_all(&frame).expect("write");
        stream.read_exact(&mut echo).expect("the echo");
        times.push(began.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(30),
        "median round trip {median:?}: {times:?}"
    );
}
