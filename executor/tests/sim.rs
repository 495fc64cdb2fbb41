//! The service layer in the simulator: the echo server under injected faults, replayed exactly
//! from a seed, and the acceptor's connection cap.

mod util;

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use executor::acceptor::Acceptor;
use executor::echo::Echo;
use executor::net::Stream;
use executor::sim::{Faults, Sim, SimPoller, SimStream};
use executor::{Coroutine, Cx, Executor, Step, Task};

/// How each client ended, by client number.
type Outcomes = Rc<RefCell<Vec<(usize, String)>>>;

/// A client: writes its message while reading the echo, and checks every byte it gets back.
struct EchoClient<S> {
    id: usize,
    stream: S,
    message: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    outcomes: Outcomes,
}

impl<S: Stream> EchoClient<S> {
    fn finish(&self, how: String) -> Step<()> {
        self.outcomes.borrow_mut().push((self.id, how));
        Step::Ready(())
    }
}

impl<S: Stream> Coroutine for EchoClient<S> {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let mut progress = false;
            if self.sent < self.message.len() {
                match self.stream.write(&self.message[self.sent..]) {
                    Ok(Step::Ready(n)) => {
                        self.sent += n;
                        progress = true;
                    }
                    Ok(Step::WouldBlock) => cx.wait_writable(self.stream.as_raw_fd()),
                    Err(e) => return self.finish(format!("write: {}", e.kind())),
                }
            }
            let mut buf = [0u8; 700];
            match self.stream.read(&mut buf) {
                Ok(Step::Ready(0)) => return self.finish("early eof".into()),
                Ok(Step::Ready(n)) => {
                    self.received.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Ok(Step::WouldBlock) => cx.wait_readable(self.stream.as_raw_fd()),
                Err(e) => return self.finish(format!("read: {}", e.kind())),
            }
            let len = self.received.len();
            assert_eq!(
                self.received[..],
                self.message[..len],
                "client {} echo differs",
                self.id
            );
            if len == self.message.len() {
                return self.finish("ok".into());
            }
            if !progress {
                return Step::WouldBlock;
            }
            cx.clear_waits();
        }
    }

    fn kind(&self) -> &'static str {
        "client"
    }
}

fn client(sim: &Sim, listener: i32, id: usize, outcomes: &Outcomes) -> EchoClient<SimStream> {
    EchoClient {
        id,
        stream: sim.connect(listener).unwrap(),
        message: (0..3000).map(|i| (i * 13 + id) as u8).collect(),
        sent: 0,
        received: Vec::new(),
        outcomes: Rc::clone(outcomes),
    }
}

/// Runs an echo server and 20 clients in the simulator; returns the trace and the outcomes.
fn echo_under_faults(seed: u64, faults: Faults) -> (Vec<String>, Vec<(usize, String)>) {
    let poller = SimPoller::new(seed);
    let sim = poller.handle();
    let mut executor = Executor::with_poller(poller).unwrap();
    executor.enable_trace();
    sim.set_faults(faults);
    let listener = sim.listener();
    let listener_fd = listener.as_raw_fd();
    executor.spawn(Acceptor::new(listener, |stream, _| -> Task {
        Box::new(Echo::new(stream))
    }));
    let outcomes = Outcomes::default();
    for id in 0..20 {
        executor.spawn(client(&sim, listener_fd, id, &outcomes));
    }
    // The acceptor never finishes by itself; ten virtual seconds are plenty for the rest.
    executor
        .run_until(sim.now() + Duration::from_secs(10))
        .unwrap();
    assert_eq!(executor.len(), 1, "only the acceptor is left");
    let mut outcomes = outcomes.take();
    assert_eq!(outcomes.len(), 20);
    outcomes.sort();
    (executor.trace_lines(), outcomes)
}

const FAULTY: Faults = Faults {
    spurious_eagain: 0.2,
    short_io: 0.3,
    reset: 0.005,
    emfile: 0.2,
};

#[test]
fn echo_in_the_simulator_checks_every_byte() {
    let (_, outcomes) = echo_under_faults(1, Faults::default());
    assert!(outcomes.iter().all(|(_, how)| how == "ok"), "{outcomes:?}");
}

/// The same seed gives the same schedule, line for line, faults included; another seed gives
/// another schedule.
#[test]
fn fault_injection_replays_the_same_trace_for_the_same_seed() {
    let (trace, outcomes) = echo_under_faults(7, FAULTY);
    let (again, outcomes_again) = echo_under_faults(7, FAULTY);
    assert_eq!(trace, again);
    assert_eq!(outcomes, outcomes_again);
    assert!(outcomes.iter().any(|(_, how)| how == "ok"), "{outcomes:?}");
    // EMFILE on accept made the acceptor (t0) back off and come back on its deadline.
    assert!(
        trace.iter().any(|l| l == "t0 resumed: deadline"),
        "{trace:#?}"
    );

    let (other, _) = echo_under_faults(8, FAULTY);
    assert_ne!(trace, other);
}

/// At the connection cap the acceptor stops polling the listener; a connection that ends wakes it.
#[test]
fn the_acceptor_stops_at_the_connection_cap_until_a_connection_ends() {
    let poller = SimPoller::new(3);
    let sim = poller.handle();
    let mut executor = Executor::with_poller(poller).unwrap();
    executor.enable_trace();
    let listener = sim.listener();
    let listener_fd = listener.as_raw_fd();
    let acceptor = Acceptor::new(listener, |stream, _| -> Task {
        Box::new(Echo::new(stream))
    })
    .with_max_connections(2);
    let connections = acceptor.connections();
    executor.spawn(acceptor);
    let outcomes = Outcomes::default();
    for id in 0..5 {
        executor.spawn(client(&sim, listener_fd, id, &outcomes));
    }
    let mut most = 0;
    while outcomes.borrow().len() < 5 {
        executor.turn().unwrap();
        most = most.max(connections.live());
        assert!(sim.elapsed() < Duration::from_secs(10), "stuck");
    }
    assert_eq!(most, 2);
    assert_eq!(connections.accepted(), 5);
    let wakes = executor
        .trace_lines()
        .iter()
        .filter(|l| *l == "t0 resumed: wake")
        .count();
    assert!(wakes >= 2, "{:#?}", executor.trace_lines());
}

/// Waits until a deadline `after` from its first resume, then finishes.
struct Sleeper {
    after: Duration,
    until: Option<std::time::Instant>,
}

impl Coroutine for Sleeper {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        let until = *self.until.get_or_insert(cx.now() + self.after);
        if cx.now() >= until {
            return Step::Ready(());
        }
        cx.wait_until(until);
        Step::WouldBlock
    }
}

/// A deadline inside the spin window is waited for with zero-timeout polls (the virtual clock
/// stays put, as a real one would move only by the poll's own cost); outside it, the poll sleeps
/// until the deadline (the virtual clock jumps there).
#[test]
fn a_deadline_inside_the_spin_window_is_polled_for_not_slept_for() {
    for (window, sleeps) in [
        (Duration::ZERO, true),
        (Duration::from_micros(500), true),
        (Duration::from_millis(2), false),
    ] {
        let poller = SimPoller::new(1);
        let sim = poller.handle();
        let mut executor = Executor::with_poller(poller).unwrap();
        executor.set_spin_window(window);
        executor.spawn(Sleeper {
            after: Duration::from_millis(1),
            until: None,
        });
        executor.turn().unwrap(); // the first resume arms the deadline
        let before = sim.elapsed();
        executor.turn().unwrap();
        assert_eq!(sim.elapsed() > before, sleeps, "window {window:?}");
    }
}
