//! `--bind unix:PATH`: serving on a socket file, as behind nginx or another local proxy.
//!
//! Real Unix-domain sockets, real clients (curl's `--unix-socket`, Python's `http.client` over
//! `AF_UNIX`), the binary's whole life: the file's mode, a stale file replaced, a live one
//! refused, the file removed at exit and kept across a restart, TCP and Unix together, the
//! access log and the CGI keys of a client that has no address.

mod util;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use asycamore::executor::{Cx, Step};
use asycamore::server::{Server, ServerOptions};
use asycamore::service::{App, Environ, Exchange, Handler};
use util::{fails, get, lines_of, scratch_dir, send_signal, wait_exit, wait_until};

/// A server this test started, killed if the test fails before stopping it (so a failed test
/// leaves no process behind holding the test harness's output open).
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary with `args` and waits until `socket` accepts.
#[track_caller]
fn start(args: &[&str], socket: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn asycamore");
    wait_until("the socket accepts", Duration::from_secs(10), || {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        UnixStream::connect(socket).is_ok()
    });
    Running(child)
}

/// One request on a new connection to `socket`; the whole reply (the request says close).
#[track_caller]
fn request(socket: &Path, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read the reply");
    String::from_utf8_lossy(&reply).into_owned()
}

fn get_unix(socket: &Path, path: &str) -> String {
    request(
        socket,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
}

fn socket_in(dir: &Path) -> PathBuf {
    dir.join("asycamore.sock")
}

#[test]
fn curl_and_python_are_served_over_a_socket_file_with_mode_0660() {
    let dir = scratch_dir("unix-clients");
    let socket = socket_in(&dir);
    let s = socket.to_str().unwrap();
    let log = dir.join("access.log");
    let mut child = start(
        &[
            "--bind",
            &format!("unix:{s}"),
            "--access-log",
            log.to_str().unwrap(),
        ],
        &socket,
    );
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "the default mode");

    if let Some(curl) = util::tool("curl", "apt-get install curl") {
        let out = Command::new(&curl)
            .args(["-sS", "--unix-socket", s, "http://localhost/"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Hello, World!",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&curl)
            .args([
                "-sS",
                "--unix-socket",
                s,
                "--data-binary",
                "over a socket file",
            ])
            .arg("http://localhost/echo")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "over a socket file");
    }

    // Python's http.client on an AF_UNIX socket: keep-alive, a chunked upload, a 404.
    let script = format!(
        r#"
import http.client, socket, zlib
class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect({s:?})
c = UnixConnection("localhost")
for i in range(5):
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"Hello, World!", i
data = bytes(range(256)) * 256
c.request("POST", "/upload", body=iter([data] * 4), encode_chunked=True)
r = c.getresponse()
body = r.read().decode()
assert r.status == 200 and '"bytes": 262144' in body and ("%08x" % zlib.crc32(data * 4)) in body, body
c.request("GET", "/nothing-here")
r = c.getresponse()
r.read()
assert r.status == 404, r.status
print("ok")
"#
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    send_signal(child.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    assert!(!socket.exists(), "the socket file is removed at exit");
    // A client without an address is logged as `unix:` where an IP would be.
    let lines = lines_of(&log);
    assert!(lines.len() >= 7, "{lines:#?}");
    for line in &lines {
        assert!(line.starts_with("unix: - - ["), "{line}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    let dir = scratch_dir("unix-stale");
    let socket = socket_in(&dir);
    let s = format!("unix:{}", socket.display());
    // What a server killed with SIGKILL leaves: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut child = start(&["--bind", &s, "--unix-mode", "600"], &socket);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "--unix-mode");
    assert!(get_unix(&socket, "/").ends_with("Hello, World!"));

    // A second server on the live file: address in use, and the first one still serves.
    let err = fails(&["--bind", &s]);
    assert!(err.contains("in use") && err.contains(&s), "{err}");
    assert!(get_unix(&socket, "/").ends_with("Hello, World!"));

    send_signal(child.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    assert!(!socket.exists(), "removed at exit");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn what_cannot_be_a_socket_file_is_one_line_and_exit_2_and_left_alone() {
    let dir = scratch_dir("unix-refused");
    // A folder, and a regular file, where the socket should go: neither is touched.
    let folder = dir.join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let err = fails(&["--bind", &format!("unix:{}", folder.display())]);
    assert!(err.contains("not a socket"), "{err}");
    assert!(folder.is_dir());
    let file = dir.join("a-file");
    std::fs::write(&file, "data").unwrap();
    let err = fails(&["--bind", &format!("unix:{}", file.display())]);
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    // Longer than sun_path holds.
    let long = dir.join("x".repeat(120));
    let err = fails(&["--bind", &format!("unix:{}", long.display())]);
    assert!(err.contains("at most 107"), "{err}");
    // A folder that does not exist.
    let err = fails(&["--bind", &format!("unix:{}/none/s.sock", dir.display())]);
    assert!(err.contains("No such file"), "{err}");
    // Modes are octal permission bits.
    for bad in ["999", "", "rw", "1777"] {
        let err = fails(&["--unix-mode", bad]);
        assert!(err.contains("not a file mode"), "{bad:?}: {err}");
    }
    // Two socket files, the second impossible: the first is not left behind.
    let first = dir.join("first.sock");
    fails(&[
        "--bind",
        &format!("unix:{}", first.display()),
        "--bind",
        &format!("unix:{}", folder.display()),
    ]);
    assert!(
        !first.exists(),
        "a server that does not start leaves no socket file"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tcp_and_a_socket_file_are_served_together_by_every_worker() {
    let dir = scratch_dir("unix-both");
    let socket = socket_in(&dir);
    let port = util::free_port();
    let tcp = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = start(
        &[
            "--bind",
            &tcp.to_string(),
            "--bind",
            &format!("unix:{}", socket.display()),
            "--workers",
            "2",
            "--max-connections",
            "64",
        ],
        &socket,
    );
    wait_until("TCP accepts", Duration::from_secs(10), || {
        std::net::TcpStream::connect(tcp).is_ok()
    });
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                for n in 0..50 {
                    if i % 2 == 0 {
                        let reply = get_unix(&socket, &format!("/?{n}"));
                        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
                    } else {
                        assert_eq!(get(tcp, "/").status, 200);
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    send_signal(child.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    assert!(!socket.exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// The SIGUSR2 restart hands the socket over: the file stays (the old process does not remove
/// what the new one serves on), the new process answers on it and removes it when it is done.
#[test]
fn a_restart_keeps_the_socket_file_and_the_last_process_removes_it() {
    // SAFETY: prctl(2) with plain integers: reap the new server when the old one exits.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let dir = scratch_dir("unix-restart");
    let socket = socket_in(&dir);
    let pid_file = dir.join("server.pid");
    let mut old = start(
        &[
            "--bind",
            &format!("unix:{}", socket.display()),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &socket,
    );
    let read_pid =
        || -> Option<u32> { std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok() };
    wait_until("the pid file", Duration::from_secs(10), || {
        read_pid() == Some(old.id())
    });
    send_signal(old.id(), libc::SIGUSR2);
    wait_until("the new process serves", Duration::from_secs(15), || {
        read_pid().is_some_and(|p| p != old.id())
    });
    let new_pid = read_pid().unwrap();
    assert_eq!(wait_exit(&mut old, Duration::from_secs(15)), Some(0));
    assert!(
        socket.exists(),
        "the old process left the file to the new one"
    );
    assert!(get_unix(&socket, "/").ends_with("Hello, World!"));
    send_signal(new_pid, libc::SIGTERM);
    wait_until(
        "the new process removes the file",
        Duration::from_secs(15),
        || !socket.exists(),
    );
    let mut status = 0;
    // SAFETY: waitpid(2) on a descendant reparented to this process, with a local int.
    let rc = unsafe { libc::waitpid(new_pid as i32, &mut status, 0) };
    assert_eq!(rc, new_pid as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    std::fs::remove_dir_all(&dir).ok();
}

/// Reports the CGI keys that depend on the connection, one per line.
struct KeysApp;
struct Keys(String);

impl App for KeysApp {
    fn handler(&self, environ: &mut Environ<'_>) -> Box<dyn Handler> {
        let mut keys = String::new();
        for key in ["REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT"] {
            let value = environ.get(key);
            keys += &format!("{key}={}\n", value.as_deref().unwrap_or("(absent)"));
        }
        Box::new(Keys(keys))
    }
}

impl Handler for Keys {
    fn resume(&mut self, ex: &mut Exchange<'_>, _: &mut Cx<'_>) -> Step<()> {
        ex.respond(200, &[("Content-Type", "text/plain")], self.0.as_bytes());
        Step::Ready(())
    }
}

#[test]
fn a_client_on_a_socket_file_has_an_empty_remote_addr_and_the_host_names_the_server() {
    let dir = scratch_dir("unix-environ");
    let socket = socket_in(&dir);
    let mut options = ServerOptions::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    options.addrs.clear();
    options.unix = vec![socket.clone()];
    let server = Server::bind(options).expect("bind the socket file");
    assert_eq!(server.socket_paths(), [socket.as_path()]);
    std::thread::spawn(move || server.run(|_| Rc::new(KeysApp) as Rc<dyn App>));
    let body = |reply: String| reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();

    let reply = body(request(
        &socket,
        "GET / HTTP/1.1\r\nHost: api.internal:8443\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(
        reply,
        "REMOTE_ADDR=\nREMOTE_PORT=(absent)\nSERVER_NAME=api.internal\nSERVER_PORT=8443\n"
    );
    // No Host (HTTP/1.0): the socket is on this host, HTTP's port.
    let reply = body(request(&socket, "GET / HTTP/1.0\r\n\r\n"));
    assert_eq!(
        reply,
        "REMOTE_ADDR=\nREMOTE_PORT=(absent)\nSERVER_NAME=localhost\nSERVER_PORT=80\n"
    );
}
