//! `--bind` on the real binary: host names (every local address they resolve to), `[v6]:PORT`,
//! several listeners at once, and the clear one-line errors for what cannot be bound.

mod util;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use util::{fails, free_port, get, send_signal, wait_exit, wait_until};

/// Runs the binary with `args` (no implicit `--bind`) and waits until every one of `addrs`
/// accepts.
#[track_caller]
fn start(args: &[&str], addrs: &[SocketAddr]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn asycamore");
    for addr in addrs {
        wait_until(&format!("{addr} accepts"), Duration::from_secs(10), || {
            assert!(
                child.try_wait().expect("try_wait").is_none(),
                "exited early"
            );
            TcpStream::connect(addr).is_ok()
        });
    }
    child
}

#[track_caller]
fn stop(mut child: Child) {
    send_signal(child.id(), libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
}

/// True if this machine can listen on `[::1]`.
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn a_host_name_binds_every_local_address_it_resolves_to() {
    let port = free_port();
    // What the resolver says `localhost` is here: 127.0.0.1, and ::1 where the hosts file says
    // so and the machine has IPv6.
    let mut expected: Vec<SocketAddr> = ("localhost", port)
        .to_socket_addrs()
        .expect("localhost resolves")
        .filter(|a| !a.is_ipv6() || has_ipv6_loopback())
        .collect();
    expected.dedup();
    assert!(expected.contains(&SocketAddr::from(([127, 0, 0, 1], port))));
    let child = start(
        &["--bind", &format!("localhost:{port}"), "--workers", "2"],
        &expected,
    );
    for addr in &expected {
        assert_eq!(get(*addr, "/").status, 200, "{addr}");
    }
    stop(child);
}

#[test]
fn several_binds_make_several_listeners_every_worker_accepting_on_all() {
    let first = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let second = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut args = vec![
        "--bind".to_owned(),
        first.to_string(),
        "--bind".to_owned(),
        second.to_string(),
    ];
    let mut addrs = vec![first, second];
    if has_ipv6_loopback() {
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, free_port()));
        args.extend(["--bind".to_owned(), v6.to_string()]); // the [::1]:PORT form
        addrs.push(v6);
    }
    args.extend(["--workers".to_owned(), "2".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = start(&args, &addrs);
    // Enough connections to each address that both workers' acceptors are used.
    for addr in &addrs {
        for _ in 0..10 {
            assert_eq!(get(*addr, "/").status, 200, "{addr}");
        }
    }
    stop(child);
}

#[test]
fn what_cannot_be_bound_is_one_line_and_exit_2() {
    // `.invalid` never resolves (RFC 6761 §6.4).
    let err = fails(&["--bind", "no-such-host.invalid:8080"]);
    assert!(err.contains("does not resolve"), "{err}");
    let err = fails(&["--bind", "8080"]);
    assert!(err.contains("HOST:PORT"), "{err}");
    assert!(err.contains("Run asycamore --help for the flags."), "{err}");
    // A second address already in use: the whole start fails, naming it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let free = format!("127.0.0.1:{}", free_port());
    let err = fails(&["--bind", &free, "--bind", &taken_addr, "--workers", "2"]);
    assert!(err.contains(&taken_addr) && err.contains("in use"), "{err}");
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_asycamore"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("asycamore {}\n", env!("CARGO_PKG_VERSION"))
    );
}
