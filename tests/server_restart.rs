//! Restarting in place (SIGUSR2) on the real binary, under load: the new process takes over
//! the listening sockets, the old one drains and exits 0, and no request fails — neither on
//! keep-alive connections nor on new ones.
#![cfg(target_os = "linux")]

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{get, lines_of, scratch_dir, send_signal, spawn_server, wait_exit, wait_until};

/// Makes this test process the reaper of orphaned descendants: the new server outlives the old
/// one (its parent), and is then reparented here, so the test can wait for its exit code.
fn become_subreaper() {
    // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER takes plain integers.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl");
}

/// Waits for process `pid` (a descendant reparented to us) to exit; returns its exit code.
#[track_caller]
fn wait_pid(pid: u32, within: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) with a valid pointer to a local int.
        let rc = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        assert!(rc >= 0, "waitpid({pid}): {}", io::Error::last_os_error());
        if rc == pid as i32 {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        assert!(
            start.elapsed() < within,
            "pid {pid} did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the process named by a pid file when dropped, so a failed test leaves no server.
struct KillOnDrop(std::path::PathBuf, u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.0).filter(|&p| p != self.1) {
            // SAFETY: kill(2) on a server this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One request and its response on `stream`; returns the status and whether the server said
/// it closes the connection. Any other outcome — a reset, a close before the response — is an
/// error: a failed request.
fn exchange(stream: &mut TcpStream, buf: &mut Vec<u8>, request: &[u8]) -> io::Result<(u16, bool)> {
    stream.write_all(request)?;
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {head:?}")))?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no content-length"))?;
    let close = head.lines().any(|l| l.trim() == "connection: close");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a body",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    Ok((status, close))
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// A client sending numbered requests until `stop`: on one keep-alive connection (reconnecting
/// only when the server says `Connection: close`), or on a new connection each time.
fn client(addr: SocketAddr, id: usize, keep_alive: bool, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match TcpStream::connect(addr) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    conn = Some((s, Vec::new()));
                }
                Err(e) => {
                    tally
                        .failures
                        .lock()
                        .unwrap()
                        .push(format!("client {id}: connect: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        }
        let Some((stream, buf)) = conn.as_mut() else {
            continue;
        };
        let close = if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        let request = format!("GET /?c={id}&n={n} HTTP/1.1\r\nHost: t\r\n{close}\r\n");
        n += 1;
        match exchange(stream, buf, request.as_bytes()) {
            Ok((200, closing)) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                if closing || !keep_alive {
                    conn = None;
                }
            }
            Ok((status, _)) => {
                tally
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("client {id}: status {status}"));
                conn = None;
            }
            Err(e) => {
                let reused = if buf.is_empty() { "" } else { " (bytes left)" };
                tally
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("client {id} request {}: {e}{reused}", n - 1));
                conn = None;
            }
        }
    }
}

#[test]
fn sigusr2_hands_the_listeners_to_a_new_process_and_no_request_fails() {
    become_subreaper();
    let dir = scratch_dir("restart-load");
    let pid_file = dir.join("server.pid");
    let log = dir.join("access.log");
    let mut old = spawn_server(&[
        "--workers",
        "2",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    let old_pid = old.child.id();
    let _guard = KillOnDrop(pid_file.clone(), old_pid);
    wait_until("the pid file", Duration::from_secs(10), || {
        read_pid(&pid_file) == Some(old_pid)
    });

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..6)
        .map(|id| {
            let (stop, tally, addr) = (Arc::clone(&stop), Arc::clone(&tally), old.addr);
            std::thread::spawn(move || client(addr, id, id % 3 != 2, stop, tally))
        })
        .collect();
    wait_until("the load runs", Duration::from_secs(10), || {
        tally.ok.load(Ordering::Relaxed) > 500
    });

    let before = tally.ok.load(Ordering::Relaxed);
    let switch = Instant::now();
    send_signal(old_pid, libc::SIGUSR2);
    wait_until(
        "the new process writes the pid file",
        Duration::from_secs(15),
        || read_pid(&pid_file).is_some_and(|p| p != old_pid),
    );
    let new_pid = read_pid(&pid_file).expect("the new pid");
    assert_eq!(
        wait_exit(&mut old.child, Duration::from_secs(15)),
        Some(0),
        "the old process"
    );
    let switched = switch.elapsed();
    let during = tally.ok.load(Ordering::Relaxed) - before;
    // Keep loading the new process alone for a while.
    let after_switch = tally.ok.load(Ordering::Relaxed);
    wait_until("the new process serves", Duration::from_secs(10), || {
        tally.ok.load(Ordering::Relaxed) > after_switch + 500
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "restart under load: {ok} requests answered, {during} of them during the {:.0} ms switch, {} failed",
        switched.as_secs_f64() * 1e3,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(during > 0, "nothing was answered during the switch");

    assert_eq!(get(old.addr, "/").status, 200, "the new process answers");
    send_signal(new_pid, libc::SIGTERM);
    assert_eq!(
        wait_pid(new_pid, Duration::from_secs(15)),
        Some(0),
        "the new process"
    );
    assert!(!pid_file.exists(), "the new process removes its pid file");
    // Both processes appended to the log: every answered client request is in it, once.
    let lines = lines_of(&log);
    let client_lines = lines.iter().filter(|l| l.contains("\"GET /?c=")).count() as u64;
    assert_eq!(client_lines, ok, "log lines for the clients' requests");
}

#[test]
fn a_new_process_that_cannot_start_leaves_the_old_one_serving() {
    become_subreaper();
    let dir = scratch_dir("restart-fail");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let pid_file = dir.join("server.pid");
    let port = util::free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut old = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--bind", &addr.to_string(), "--quiet", "--workers", "1"])
        .args([
            "--root",
            root.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let old_pid = old.id();
    let _guard = KillOnDrop(pid_file.clone(), old_pid);
    let stderr = old.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    wait_until("the pid file", Duration::from_secs(10), || {
        read_pid(&pid_file) == Some(old_pid)
    });
    // The same command line cannot start now: its --root is gone.
    std::fs::remove_dir_all(&root).unwrap();
    send_signal(old_pid, libc::SIGUSR2);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("still serving")) {
        seen.push(
            lines
                .recv_timeout(Duration::from_secs(15))
                .expect("a report of the failure"),
        );
    }
    assert!(
        seen.iter().any(|l| l.contains("is not a folder")),
        "{seen:?}"
    );
    assert_eq!(get(addr, "/").status, 200, "the old process still serves");
    assert_eq!(read_pid(&pid_file), Some(old_pid));
    // Once the cause is fixed, a second SIGUSR2 succeeds.
    std::fs::create_dir_all(&root).unwrap();
    send_signal(old_pid, libc::SIGUSR2);
    assert_eq!(wait_exit(&mut old, Duration::from_secs(15)), Some(0));
    let new_pid = read_pid(&pid_file).expect("the new pid");
    assert_ne!(new_pid, old_pid);
    assert_eq!(get(addr, "/").status, 200, "the new process serves");
    send_signal(new_pid, libc::SIGTERM);
    assert_eq!(wait_pid(new_pid, Duration::from_secs(15)), Some(0));
}

#[test]
fn a_second_start_on_the_same_address_still_fails_with_address_in_use() {
    let server = spawn_server(&["--workers", "2"]);
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .args(["--bind", &server.addr.to_string(), "--workers", "2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("in use"), "{err}");
}
