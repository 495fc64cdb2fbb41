//! `/blocking`: blocking work on the thread pool leaves the loop free, and a full queue answers
//! 503 at once.

mod util;

use std::time::{Duration, Instant};

use util::{roundtrip, spawn_server};

const LONG: &[u8] = b"GET /blocking?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn blocking_work_runs_on_the_pool_while_the_loop_serves_others() {
    let server = spawn_server(&["--workers", "1", "--threads", "2"]);
    let addr = server.addr;
    let start = Instant::now();
    let slow: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || roundtrip(addr, LONG)))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // The loop is not blocked: a quick request is answered while both pool threads sleep.
    let quick = roundtrip(addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(quick.status, 200);
    assert!(start.elapsed() < Duration::from_millis(800));
    for t in slow {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"slept 1000 ms on the pool\n");
    }
    // Both ran at once, on two threads.
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_full_pool_queue_answers_503_at_once() {
    let server = spawn_server(&["--workers", "1", "--threads", "1", "--pool-queue", "1"]);
    let addr = server.addr;
    // One request runs, one waits in the queue; the rest find it full.
    let requests: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let start = Instant::now();
                let r = roundtrip(addr, LONG);
                (r, start.elapsed())
            })
        })
        .collect();
    let answers: Vec<_> = requests.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = answers.iter().filter(|(r, _)| r.status == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(r, _)| r.status == 503).collect();
    assert_eq!(ok + refused.len(), 4, "{answers:?}");
    assert!(ok >= 1, "{answers:?}");
    assert!(refused.len() >= 2, "{answers:?}");
    for (r, took) in refused {
        assert_eq!(r.header("retry-after"), Some("1"));
        assert!(*took < Duration::from_millis(500), "a 503 took {took:?}");
    }
}

#[test]
fn blocking_refuses_a_bad_duration() {
    let server = spawn_server(&[]);
    let r = roundtrip(
        server.addr,
        b"GET /blocking?ms=x HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(r.status, 400);
}
