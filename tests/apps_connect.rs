//! `CONNECT` tunnels (`--allow-connect`) over real sockets: curl through the tunnel to a second
//! asycamore, bytes both ways with a half-close, the allow-list's 403, 405 without the flag, 502
//! for a destination that refuses, and the flag's command-line errors.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::process::Command;

use util::{Reader, connect, fails, free_port, pattern, read_head, spawn_server, tool};

/// `CONNECT target` on a fresh connection, with `then` sent right after the head.
fn tunnel(proxy: std::net::SocketAddr, target: &str, then: &[u8]) -> std::net::TcpStream {
    let mut stream = connect(proxy);
    let mut bytes = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(then);
    stream.write_all(&bytes).expect("write");
    stream
}

#[test]
fn curl_through_the_tunnel() {
    let Some(curl) = tool("curl", "apt-get install curl") else {
        return;
    };
    let upstream = spawn_server(&[]);
    let allow = upstream.addr.to_string();
    let proxy = spawn_server(&["--allow-connect", &allow]);
    let out = Command::new(curl)
        .args(["-s", "-S", "-p", "-x"])
        .arg(format!("http://{}", proxy.addr))
        .arg(format!("http://{}/", upstream.addr))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"Hello, World!");
}

#[test]
fn bytes_go_both_ways_and_a_half_close_is_passed_on() {
    let upstream = spawn_server(&[]);
    let allow = upstream.addr.to_string();
    let proxy = spawn_server(&["--allow-connect", &allow]);
    // A 1 MiB POST to the upstream's /echo through the tunnel, the request pipelined after the
    // CONNECT head, then the client's half-close: the echo must come back whole.
    let body = pattern(1 << 20, 3);
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: u\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut stream = tunnel(proxy.addr, &allow, &request[..100]);
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    stream.write_all(&request[100..]).expect("write");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let response = Reader::new(stream).response();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
}

#[test]
fn refusals() {
    let upstream = spawn_server(&[]);
    let closed = format!("127.0.0.1:{}", free_port());
    let allow = format!("{},{closed}", upstream.addr);
    let proxy = spawn_server(&["--allow-connect", &allow]);
    // Not on the list: 403.
    let r = Reader::new(tunnel(proxy.addr, "127.0.0.1:1", b"")).response();
    assert_eq!(r.status, 403);
    // On the list, but nothing listens there: 502.
    let r = Reader::new(tunnel(proxy.addr, &closed, b"")).response();
    assert_eq!(r.status, 502);
    // Without the flag: 405, and CONNECT is not in Allow.
    let plain = spawn_server(&[]);
    let target = upstream.addr.to_string();
    let r = Reader::new(tunnel(plain.addr, &target, b"")).response();
    assert_eq!(r.status, 405);
    assert!(
        !r.header("allow").unwrap_or("").contains("CONNECT"),
        "{:?}",
        r.header("allow")
    );
    // A target that is not host:port: the head detector's 400.
    let mut stream = tunnel(proxy.addr, "/path", b"");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[test]
fn the_flag_says_what_is_wrong() {
    assert!(fails(&["--allow-connect", "example"]).contains("HOST:PORT"));
    assert!(fails(&["--allow-connect", "127.0.0.1:99999"]).contains("HOST:PORT"));
    assert!(fails(&["--allow-connect", ","]).contains("at least one"));
    assert!(fails(&["--ws-max-message", "0"]).contains("above 0"));
    assert!(fails(&["--upgrade-idle-timeout", "0"]).contains("upgrade-idle-timeout"));
}
