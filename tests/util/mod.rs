//! Helpers shared by the server's integration tests: start a server, talk raw HTTP to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use asycamore::config::Config;
use asycamore::server::{Server, ServerOptions};
use asycamore::service::App;

/// Starts a server for the app `make_app` builds, on 127.0.0.1 and a free port, in a thread of its
/// own (left running until the test process ends).
#[track_caller]
pub fn serve(config: Config, make_app: fn() -> Rc<dyn App>) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        options.config = config;
        let server = Server::bind(options).expect("bind 127.0.0.1:0");
        tx.send(server.local_addr()).expect("send address");
        server.run(move |_| make_app()).expect("server runs");
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("server started")
}

/// The demo router (`/`, `/echo`, `/upload`) with default settings.
pub fn serve_demo() -> SocketAddr {
    serve(Config::default(), || {
        Rc::new(
            asycamore::middleware::Router::new()
                .exact("/", asycamore::apps::Hello)
                .mount("/echo", asycamore::apps::Echo)
                .mount("/upload", asycamore::apps::Upload),
        )
    })
}

/// Connects with a 10-second read timeout, so a hung server fails the test instead of hanging it.
#[track_caller]
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body, names lower-cased.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads from a stream, keeping what is left after each response for the next.
pub struct Reader {
    /// The stream responses come from.
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already taken.
    pos: usize,
}

impl Reader {
    /// A reader over `stream`.
    pub fn new(stream: TcpStream) -> Reader {
        Reader {
            stream,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn fill(&mut self) -> usize {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) => panic!(
                "read failed: {e} (have {:?})",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    fn take_line(&mut self) -> Option<String> {
        loop {
            let rest = &self.buf[self.pos..];
            if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&rest[..i]).into_owned();
                self.pos += i + 2;
                return Some(line);
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() - self.pos < n {
            assert!(self.fill() > 0, "connection closed inside a body");
        }
        self.pos += n;
        self.buf[self.pos - n..self.pos].to_vec()
    }

    /// Reads one response to a request with `method`; `None` if the connection closed first.
    #[track_caller]
    pub fn response_to(&mut self, method: &str) -> Option<Response> {
        let status_line = self.take_line()?;
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.take_line().expect("head ends");
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header has a colon");
            headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if status / 100 == 1 {
            return Some(response);
        }
        if method == "HEAD" || status == 204 || status == 304 {
            return Some(response);
        }
        if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let size_line = self.take_line().expect("chunk size");
                let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                    .expect("hex size");
                if size == 0 {
                    loop {
                        let line = self.take_line().expect("trailer");
                        let Some((n, v)) = line.split_once(':') else {
                            break;
                        };
                        response
                            .trailers
                            .push((n.to_ascii_lowercase(), v.trim().to_owned()));
                    }
                    break;
                }
                let data = self.take_exact(size);
                response.body.extend_from_slice(&data);
                assert_eq!(self.take_exact(2), b"\r\n");
            }
        } else if let Some(n) = response.header("content-length") {
            let n: usize = n.parse().expect("length");
            response.body = self.take_exact(n);
        } else {
            while self.fill() > 0 {}
            response.body = self.buf.split_off(self.pos);
        }
        Some(response)
    }

    /// Reads one response to a GET.
    #[track_caller]
    pub fn response(&mut self) -> Response {
        self.response_to("GET")
            .expect("a response before the close")
    }

    /// True if the server closes the connection without sending anything more.
    pub fn closed(&mut self) -> bool {
        self.buf.len() == self.pos && self.fill() == 0
    }
}

/// Sends `request` on a new connection and reads one response.
#[track_caller]
pub fn roundtrip(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = connect(addr);
    stream.write_all(request).expect("write");
    Reader::new(stream).response()
}

/// A spawned `asycamore` binary, killed on drop.
pub struct Spawned {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("field present")
    }
}

/// A free port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the `asycamore` binary with `args` on a free port and waits until it accepts.
///
/// A port found free may be taken by another test's server (or an outgoing connection) before
/// this one binds it, and a connect that succeeds may reach that other server. So the server is
/// known to be up only once the listening socket on the port is one of the child's own
/// descriptors; if the child exits instead (the port was taken), another port is tried.
#[track_caller]
pub fn spawn_server(args: &[&str]) -> Spawned {
    for _ in 0..20 {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(env!("CARGO_BIN_EXE_asycamore"))
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--quiet")
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn asycamore");
        let mut spawned = Spawned { child, addr };
        let start = Instant::now();
        loop {
            if spawned.child.try_wait().expect("try_wait").is_some() {
                break; // it could not bind: try another port
            }
            if listens_on(spawned.child.id(), port) {
                return spawned;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("no free port could be bound");
}

/// True if process `pid` holds a socket listening on 127.0.0.1:`port` (from `/proc/net/tcp`
/// and the process's descriptors).
fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    // "sl local_address rem_address st ... inode": 0100007F:1F90 is 127.0.0.1:8080, 0A LISTEN.
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(9).map(|s| format!("socket:[{s}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// Peak RSS a streaming server may reach, in KiB.
pub const PEAK_RSS_LIMIT_KIB: u64 = 32 * 1024;

/// The size of the "1 GiB" streaming tests: `ASYCAMORE_BIG_BYTES` when set, for a quicker run.
pub fn big_bytes() -> u64 {
    std::env::var("ASYCAMORE_BIG_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

/// `len` bytes of deterministic, not-too-regular data (xorshift from `seed`).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Reads a response head byte by byte (leaving the body unread on `stream`) and returns it.
#[track_caller]
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a whole head");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("a UTF-8 head")
}

/// Kills every process of the group `leader` leads (a browser and its helpers).
pub fn kill_process_group(leader: u32) {
    let group = -i32::try_from(leader).unwrap_or(i32::MAX);
    // SAFETY: kill(2) with a process group id and a signal number reads no memory of ours.
    unsafe { libc::kill(group, libc::SIGKILL) };
}

/// Sends `signal` to process `pid` (one of our servers).
#[track_caller]
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with plain integers, on a pid the test started.
    let rc = unsafe { libc::kill(pid as i32, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Waits for `child` to exit; returns its exit code (`None` if a signal killed it).
#[track_caller]
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        assert!(
            start.elapsed() < within,
            "the server did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` every 20 ms until it holds; fails the test after `within`.
#[track_caller]
pub fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh, empty folder for one test's files, named after it.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("asycamore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The lines of a file (none if it does not exist yet).
pub fn lines_of(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A GET of `path` on a new connection.
#[track_caller]
pub fn get(addr: SocketAddr, path: &str) -> Response {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// One sample of a `/metrics` page, `name{labels} value`, as a map key and value.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// For a test whose real part needs `tool`: its path, if it is on the PATH (or in `/usr/sbin`).
/// Otherwise the test is skipped, saying so where a reader sees it (straight to standard error,
/// past the test harness's capture) — and under `CI`, where `.ci/run` installs every tool, a
/// missing one fails.
#[track_caller]
pub fn tool(tool: &str, install: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (.ci/run installs it)"
        );
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIPPED: {tool} is not installed ({install})\n").as_bytes(),
        );
    }
    found
}

/// Runs the binary with `args` and checks it fails as a command line should: one line on
/// standard error, exit status 2. Returns that line.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(args)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    err
}
