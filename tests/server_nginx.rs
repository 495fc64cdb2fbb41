//! The README's nginx example, exercised: nginx (from Debian) as a reverse proxy in front of the
//! asycamore binary, relaying keep-alive requests, an echo and a streamed chunked upload — to
//! asycamore over TCP, and over a socket file (`--bind unix:PATH`, the example's other
//! `server` line).
//!
//! Needs `nginx` on the PATH; `.ci/run` installs it. Outside CI a missing nginx skips the test
//! with a message; in CI (`CI` set) it fails.

mod util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{free_port, spawn_server};

/// The example configuration shown in README.md.
const EXAMPLE: &str = include_str!("data/nginx/asycamore.conf");

#[test]
fn nginx_proxies_to_asycamore_with_the_example_config() {
    let Some(nginx) = util::tool("nginx", "apt-get install nginx") else {
        return;
    };
    let server = spawn_server(&["--workers", "1"]);
    let dir = util::scratch_dir("nginx-tcp");
    through_nginx(&nginx, &dir, &server.addr.to_string());
}

#[test]
fn nginx_proxies_to_asycamore_on_a_socket_file() {
    let Some(nginx) = util::tool("nginx", "apt-get install nginx") else {
        return;
    };
    let dir = util::scratch_dir("nginx-unix");
    let socket = dir.join("asycamore.sock");
    let log = dir.join("access.log");
    let _server = spawn_server(&[
        "--workers",
        "1",
        "--bind",
        &format!("unix:{}", socket.display()),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    util::wait_until("the socket file", Duration::from_secs(10), || {
        socket.exists()
    });
    through_nginx(&nginx, &dir, &format!("unix:{}", socket.display()));
    // Every request came over the socket file: no client address.
    // (The log's own thread writes the lines a moment after the responses.)
    util::wait_until("7 log lines", Duration::from_secs(10), || {
        util::lines_of(&log).len() >= 7
    });
    let lines = util::lines_of(&log);
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("unix: ")), "{lines:#?}");
}

/// Starts nginx with the example, its upstream `server` line pointing at `upstream` (an address
/// or `unix:PATH`), and talks to asycamore through it.
fn through_nginx(nginx: &std::path::Path, dir: &std::path::Path, upstream: &str) {
    let front = free_port();
    let site = EXAMPLE
        .replace("server 127.0.0.1:8080;", &format!("server {upstream};"))
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{front}"));
    std::fs::write(dir.join("asycamore.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/asycamore.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let mut nginx = Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", front)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("http://127.0.0.1:{front}");
    let script = format!(
        r#"
import http.client, zlib
c = http.client.HTTPConnection("127.0.0.1", {front}, timeout=10)
for i in range(5):
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"Hello, World!", i
c.request("POST", "/echo", body=b"through nginx")
r = c.getresponse()
assert r.read() == b"through nginx"
data = bytes(range(256)) * 4096
c.request("POST", "/upload", body=iter([data] * 4), encode_chunked=True,
          headers={{"Transfer-Encoding": "chunked"}})
r = c.getresponse()
body = r.read().decode()
crc = "%08x" % zlib.crc32(data * 4)
assert r.status == 200 and '"bytes": 4194304' in body and crc in body, body
print("ok")
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let _ = nginx.kill();
    let _ = nginx.wait();
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "via {url}: {}\nnginx log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
}
