//! The `asycamore-bench` binary's command line: sizes and durations with units, a bad flag as one
//! line naming the tool's own `--help` (exit 2), and `load` failing when nothing succeeded.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::Duration;

use asycamore::server::{Server, ServerOptions, ShutdownHandle};
use asycamore::service::App;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asycamore-bench"))
        .args(args)
        .output()
        .expect("run asycamore-bench")
}

#[track_caller]
fn one_line_usage_error(args: &[&str], hint: &str) -> String {
    let out = bench(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.trim_end().ends_with(hint), "{args:?}: {err}");
    err
}

#[test]
fn a_bad_flag_is_one_line_naming_the_tools_own_help() {
    let load_help = "Run asycamore-bench load --help for the flags.";
    let err = one_line_usage_error(
        &["load", "--no-such-flag", "http://127.0.0.1:1/"],
        load_help,
    );
    assert!(err.contains("--no-such-flag"), "{err}");
    // argh's two-line message for a missing positional becomes one line.
    one_line_usage_error(&["load"], load_help);
    // Units are checked by the one parser both crates use.
    let err = one_line_usage_error(&["load", "-d", "10x", "http://127.0.0.1:1/"], load_help);
    assert!(err.contains("unknown unit"), "{err}");
    let err = one_line_usage_error(
        &["load", "--body-size", "1.5K", "http://127.0.0.1:1/"],
        load_help,
    );
    assert!(err.contains("not a number"), "{err}");
    // Checks made after parsing are usage errors too.
    one_line_usage_error(&["load", "-c", "0", "http://127.0.0.1:1/"], load_help);
    one_line_usage_error(
        &["pending", "-d", "0s", "http://127.0.0.1:1/"],
        "Run asycamore-bench pending --help for the flags.",
    );
    one_line_usage_error(
        &["compare", "--duration", "1500ms"],
        "Run asycamore-bench compare --help for the flags.",
    );
    let profiles_help = "Run asycamore-bench profiles --help for the flags.";
    for args in [
        ["profiles", "--profiles", "tiny,huge"],
        ["profiles", "--servers", "nginx"],
        ["profiles", "--duration", "0s"],
    ] {
        one_line_usage_error(&args, profiles_help);
    }
    one_line_usage_error(
        &["no-such-tool"],
        "Run asycamore-bench --help for the tools.",
    );
}

#[test]
fn load_fails_when_no_request_succeeded() {
    // A port nobody listens on: every connect is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    for args in [
        vec!["load", "-d", "300ms", "-c", "2", url.as_str()],
        // A -n run gives up after --timeout without a connection instead of retrying forever.
        vec!["load", "-n", "10", "--timeout", "300ms", url.as_str()],
    ] {
        let out = bench(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("no request succeeded"), "{args:?}: {err}");
    }
}

/// The demo hello server in a thread of the test; shut down when dropped.
struct DemoServer {
    addr: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.stop.begin();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn load_takes_durations_and_sizes_with_units() {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut options = ServerOptions::new("127.0.0.1:0".parse().expect("address"));
        options.grace = Duration::from_millis(300);
        let server = Server::bind(options).expect("bind");
        tx.send((server.local_addr(), server.shutdown_handle()))
            .expect("test waits");
        server
            .run(|_| Rc::new(asycamore::apps::Echo) as Rc<dyn App>)
            .expect("server runs");
    });
    let (addr, stop) = rx.recv().expect("server starts");
    let _server = DemoServer {
        addr,
        stop,
        thread: Some(thread),
    };
    let url = format!("http://{}/", _server.addr);
    let out = bench(&[
        "load",
        "-d",
        "300ms",
        "-c",
        "2",
        "--body-size",
        "2K",
        "--timeout",
        "2s",
        "--json",
        &url,
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("\"errors\":{\"connect\":0,\"read\":0,\"malformed\":0,\"timeout\":0}"),
        "{report}"
    );
    let field = |name: &str| -> f64 {
        let at = report.find(&format!("\"{name}\":")).expect(name) + name.len() + 3;
        report[at..]
            .split([',', '}'])
            .next()
            .unwrap()
            .parse()
            .expect(name)
    };
    let responses = field("responses_total");
    assert!(responses > 0.0, "{report}");
    // -d 300ms: the measured span.
    assert!((field("elapsed_sec") - 0.3).abs() < 0.05, "{report}");
    // --body-size 2K: each echoed body is 2048 bytes, so more than that is read per response.
    let bytes = field("bytes_per_sec") * field("elapsed_sec");
    assert!(bytes / responses > 2048.0, "{report}");
}
