//! Running out of file descriptors: the acceptor backs off instead of spinning, and accepts again
//! once descriptors are free.
//!
//! Lowering `RLIMIT_NOFILE` would starve every other test in this process, so the test runs itself
//! again as a child process (the same binary, this test only, with an environment variable set) and
//! does the real work there.

mod util;

use std::fs::File;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use executor::acceptor::Acceptor;
use executor::echo::Echo;
use executor::{Executor, Task};

const CHILD: &str = "ASYCAMORE_EXECUTOR_EMFILE_CHILD";
const TEST_NAME: &str = "the_acceptor_backs_off_on_emfile_and_recovers";

/// Soft limit on open files in the child: room for the test harness, not much more.
const CHILD_FD_LIMIT: u64 = 64;

/// Clients queued in the listener's backlog while the child has no descriptor to spare.
const CLIENTS: usize = 4;

#[test]
fn the_acceptor_backs_off_on_emfile_and_recovers() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes into the live local struct.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) },
        0
    );
    // SAFETY: zeroed is a valid rusage, and getrusage succeeded.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn child() {
    let mut executor = Executor::new().unwrap();
    let (listener, addr) = util::loopback_listener();
    let clients: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();

    let mut limit = libc::rlimit {
        rlim_cur: CHILD_FD_LIMIT,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the live local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = CHILD_FD_LIMIT;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let mut filler = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        filler.push(f);
    }
    assert!(!filler.is_empty());

    let acceptor = Acceptor::new(listener, |stream, _| -> Task {
        Box::new(Echo::new(stream))
    })
    .with_backoff(Duration::from_millis(50));
    let connections = acceptor.connections();
    executor.spawn(acceptor);

    // One second out of descriptors, with connections waiting: measure the CPU it costs.
    let (cpu, wall) = (cpu_time(), Instant::now());
    executor
        .run_until(Instant::now() + Duration::from_secs(1))
        .unwrap();
    let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
    assert_eq!(connections.accepted(), 0);
    assert!(
        (5..=40).contains(&connections.backoffs()),
        "about one backoff per 50 ms, got {}",
        connections.backoffs()
    );
    assert!(
        cpu.as_secs_f64() < 0.3 * wall.as_secs_f64(),
        "the acceptor spun: {cpu:?} of CPU in {wall:?}"
    );
    assert!(executor.stats().resumes < 100, "{:?}", executor.stats());

    // Descriptors free again: the queued clients are served.
    drop(filler);
    let stop = executor.stop_handle();
    let talk = std::thread::spawn(move || {
        for (i, mut c) in clients.into_iter().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let message = format!("hello {i}");
            c.write_all(message.as_bytes()).unwrap();
            let mut back = vec![0; message.len()];
            c.read_exact(&mut back).unwrap();
            assert_eq!(back, message.as_bytes());
        }
        stop.stop();
    });
    executor.run().unwrap();
    talk.join().unwrap();
    assert_eq!(connections.accepted(), CLIENTS as u64);
    println!(
        "backoffs {}, cpu {cpu:?} in {wall:?}",
        connections.backoffs()
    );
}
