//! The floor: `floor ADDR`, a do-nothing epoll loop that answers every `\r\n\r\n` it reads with a
//! canned `Hello, World!` response. **A floor to measure against, not a server**: it parses
//! nothing, checks nothing, frames nothing but its own canned bytes, and would answer a request
//! body's blank lines too. What a real server costs above it is what parsing, routing, framing
//! and keep-alive decisions cost; what it costs itself is what the kernel's sockets cost.
//!
//! One thread, level-triggered epoll, non-blocking sockets, `TCP_NODELAY`, one 16 KiB read buffer
//! shared by every connection (a connection keeps only the last three bytes it read, to find a
//! `\r\n\r\n` split across reads), and responses written with one `write` per read (pending bytes,
//! when the socket is full, wait for `EPOLLOUT`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// What one connection keeps between reads.
#[derive(Default)]
struct Conn {
    /// The last bytes read (at most three), to find a terminator split across reads.
    tail: Vec<u8>,
    /// Response bytes the socket did not take yet.
    pending: Vec<u8>,
}

fn epoll_ctl(epoll: RawFd, op: i32, fd: RawFd, events: u32) {
    let mut event = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: a valid epoll descriptor and a live event struct; errors are ignored (a floor).
    unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) };
}

fn close(epoll: RawFd, fd: RawFd, conns: &mut HashMap<RawFd, Conn>) {
    conns.remove(&fd);
    epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, 0);
    // SAFETY: fd is a socket this loop accepted and owns; it is forgotten right here.
    unsafe { libc::close(fd) };
}

/// Writes as much of `conn.pending` as the socket takes; false if the connection broke.
fn flush(fd: RawFd, conn: &mut Conn) -> bool {
    while !conn.pending.is_empty() {
        // SAFETY: the pointer and length describe the live `pending` vector.
        let n = unsafe {
            libc::send(
                fd,
                conn.pending.as_ptr().cast(),
                conn.pending.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
        }
        conn.pending.drain(..n as usize);
    }
    true
}

fn main() {
    let addr: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => {
            eprintln!("usage: floor ADDR");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor: {addr}: {e}");
            std::process::exit(1);
        }
    };
    let _ = listener.set_nonblocking(true);
    let lfd = listener.as_raw_fd();
    // SAFETY: epoll_create1 takes no pointers.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    epoll_ctl(epoll, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32);
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: the pointer and length describe the live `events` vector.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
        for i in 0..n.max(0) as usize {
            let (mask, fd) = (events[i].events, events[i].u64 as RawFd);
            if fd == lfd {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = stream.set_nonblocking(true);
                    let _ = stream.set_nodelay(true);
                    let cfd = stream.into_raw_fd();
                    conns.insert(cfd, Conn::default());
                    epoll_ctl(epoll, libc::EPOLL_CTL_ADD, cfd, libc::EPOLLIN as u32);
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&fd) else {
                continue;
            };
            if mask & libc::EPOLLOUT as u32 != 0 {
                if !flush(fd, conn) {
                    close(epoll, fd, &mut conns);
                    continue;
                }
                if conn.pending.is_empty() {
                    epoll_ctl(epoll, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32);
                }
            }
            if mask & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 == 0 {
                continue;
            }
            // SAFETY: the pointer and length describe the live `buf` vector.
            let got = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got <= 0 {
                if got == 0
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock
                {
                    close(epoll, fd, &mut conns);
                }
                continue;
            }
            let read = &buf[..got as usize];
            let mut seen = conn.tail.clone();
            seen.extend_from_slice(&read[..read.len().min(3)]);
            let mut answers = seen.windows(4).filter(|w| *w == b"\r\n\r\n").count();
            answers += read.windows(4).filter(|w| *w == b"\r\n\r\n").count();
            let keep = read.len().min(3);
            conn.tail.clear();
            conn.tail.extend_from_slice(&read[read.len() - keep..]);
            let had_pending = !conn.pending.is_empty();
            for _ in 0..answers {
                conn.pending.extend_from_slice(RESPONSE);
            }
            if !flush(fd, conn) {
                close(epoll, fd, &mut conns);
            } else if !had_pending && !conn.pending.is_empty() {
                epoll_ctl(
                    epoll,
                    libc::EPOLL_CTL_MOD,
                    fd,
                    (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                );
            }
        }
    }
}
