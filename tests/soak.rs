//! A soak under abuse, against one spawned server, all at the same time: 1,000 idle keep-alive
//! connections, 200 slow-loris connections sending a byte every two seconds, clients that reset
//! mid-request and mid-response, a stream of malformed requests, a 100 MB chunked upload, and a
//! normal client measuring latency throughout. Then SIGTERM during load.
//!
//! Bounded to about half a minute; `ASYCAMORE_SOAK_SECS` makes it longer.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use asycamore::crc32::Crc32;
use util::{Reader, connect, spawn_server};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

fn soak_duration() -> Duration {
    let secs = std::env::var("ASYCAMORE_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Closes `stream` with a reset instead of a FIN (SO_LINGER with a zero timeout).
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on an open socket with a correctly sized option value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Opens `n` keep-alive connections, each answered once, and holds them.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<Reader> {
    (0..n)
        .map(|_| {
            let mut c = connect(addr);
            c.write_all(GET).unwrap();
            let mut r = Reader::new(c);
            assert_eq!(r.response().status, 200);
            r
        })
        .collect()
}

/// A loop of `what` until `stop`, counting rounds.
fn spawn_loop(
    stop: &Arc<AtomicBool>,
    rounds: &Arc<AtomicU64>,
    what: impl Fn() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let stop = Arc::clone(stop);
    let rounds = Arc::clone(rounds);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            what();
            rounds.fetch_add(1, Ordering::Relaxed);
        }
    })
}

#[test]
fn the_server_survives_abuse_and_shuts_down_cleanly() {
    asycamore::executor::net::raise_fd_limit().expect("raise the descriptor limit");
    let mut server = spawn_server(&["--workers", "2", "--head-timeout", "5"]);
    let addr = server.addr;
    let pid = server.child.id();
    // Warm up, then take the baseline.
    drop(idle_connections(addr, 4));
    std::thread::sleep(Duration::from_millis(300));
    let fds_baseline = open_fds(pid);
    let rss_baseline = server.status_kib("VmRSS");

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();

    // 1,000 idle keep-alive connections.
    let idle = idle_connections(addr, 1000);

    // 200 slow-loris connections: a byte every two seconds until the server gives up on them.
    let loris_closed = Arc::new(AtomicU64::new(0));
    {
        let stop = Arc::clone(&stop);
        let closed = Arc::clone(&loris_closed);
        threads.push(std::thread::spawn(move || {
            let mut conns: Vec<Option<TcpStream>> = (0..200).map(|_| Some(connect(addr))).collect();
            for c in conns.iter().flatten() {
                c.set_nonblocking(true).unwrap();
            }
            let head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                for slot in conns.iter_mut() {
                    if let Some(c) = slot {
                        let byte = head.get(i).copied().unwrap_or(b'a');
                        let mut scratch = [0u8; 512];
                        let gone = match c.read(&mut scratch) {
                            Ok(_) => true, // a 408 (or a close): the server gave up, as it should
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        } || c.write(&[byte]).is_err();
                        if gone {
                            *slot = None;
                            closed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_secs(2));
            }
        }));
    }

    // Clients that reset mid-request and mid-response.
    let resets = Arc::new(AtomicU64::new(0));
    threads.push(spawn_loop(&stop, &resets, move || {
        let mut c = connect(addr);
        let _ = c.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc");
        reset(c);
        let mut c = connect(addr);
        let _ = c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
        let _ = c.write_all(&[b'x'; 200_000]);
        let mut some = [0u8; 1000];
        let _ = c.read(&mut some);
        reset(c);
    }));

    // A stream of malformed requests: each gets a 4xx and a close.
    let malformed = Arc::new(AtomicU64::new(0));
    let bad_answers = Arc::new(AtomicU64::new(0));
    {
        let bad = Arc::clone(&bad_answers);
        threads.push(spawn_loop(&stop, &malformed, move || {
            for request in [
                &b"GET / HTTP/1.1\r\n\r\n"[..],
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"\x00\x01\x02 garbage\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
            ] {
                let mut c = connect(addr);
                let _ = c.write_all(request);
                let mut r = Reader::new(c);
                match r.response_to("GET") {
                    Some(resp) if resp.status / 100 == 4 => {}
                    _ => {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    // A 100 MB chunked upload whose checksum must match.
    let upload = std::thread::spawn(move || {
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        c.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let piece: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let mut crc = Crc32::default();
        for _ in 0..1000 {
            c.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                .unwrap();
            c.write_all(&piece).unwrap();
            c.write_all(b"\r\n").unwrap();
            crc.update(&piece);
        }
        c.write_all(b"0\r\n\r\n").unwrap();
        let r = Reader::new(c).response();
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.contains("\"bytes\": 100000000"), "{text}");
        assert!(
            text.contains(&format!("\"crc32\": \"{:08x}\"", crc.value())),
            "{text}"
        );
    });

    // The normal client: sequential requests on one keep-alive connection, every one must work.
    let mut latencies = Vec::new();
    let mut normal = Reader::new(connect(addr));
    let started = Instant::now();
    while started.elapsed() < soak_duration() {
        let t = Instant::now();
        normal.stream.write_all(GET).unwrap();
        let r = normal.response();
        assert_eq!(r.body, b"Hello, World!");
        latencies.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    upload.join().expect("the upload's checksum matches");
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "soak: {} normal requests, p50 {:?}, p99 {:?}, max {:?}; {} reset rounds, {} malformed rounds, {} slow-loris closed",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99,
        latencies.last().unwrap(),
        resets.load(Ordering::Relaxed),
        malformed.load(Ordering::Relaxed),
        loris_closed.load(Ordering::Relaxed),
    );
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
    assert_eq!(
        bad_answers.load(Ordering::Relaxed),
        0,
        "a malformed request was not answered 4xx"
    );
    assert_eq!(
        loris_closed.load(Ordering::Relaxed),
        200,
        "slow-loris connections outlived the head timeout"
    );

    // Everything closes: the server's fds return to the baseline, and its memory near it.
    drop(idle);
    drop(normal);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > fds_baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        open_fds(pid) <= fds_baseline,
        "leaked fds: {} > {fds_baseline}",
        open_fds(pid)
    );
    let rss_after = server.status_kib("VmRSS");
    eprintln!(
        "soak: RSS baseline {rss_baseline} KiB, after {rss_after} KiB, peak {} KiB",
        server.status_kib("VmHWM")
    );
    assert!(
        rss_after < rss_baseline + 16 * 1024,
        "RSS {rss_after} KiB vs baseline {rss_baseline} KiB"
    );

    // SIGTERM during load: every response that started completes; the process exits 0.
    let stop = Arc::new(AtomicBool::new(false));
    let complete = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..8)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let complete = Arc::clone(&complete);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        return;
                    };
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    if c.write_all(
                        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
                    )
                    .is_err()
                        || c.write_all(&[b'y'; 100_000]).is_err()
                    {
                        continue;
                    }
                    let mut raw = Vec::new();
                    let _ = c.read_to_end(&mut raw);
                    if raw.is_empty() {
                        continue; // closed before answering: never started
                    }
                    let text = String::from_utf8_lossy(&raw);
                    assert!(
                        text.starts_with("HTTP/1.1 200"),
                        "{}",
                        &text[..text.len().min(200)]
                    );
                    let body_at = text.find("\r\n\r\n").expect("a whole head") + 4;
                    assert_eq!(
                        raw.len() - body_at,
                        100_000,
                        "a started response was cut short"
                    );
                    complete.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().expect("every started response completed");
    }
    assert_eq!(exit.code(), Some(0));
    assert!(complete.load(Ordering::Relaxed) > 0);
}
