//! The whole server under the deterministic simulator: one worker (the acceptor on a simulated
//! listener, the demo applications `hello`, `echo`, `upload` and `sleep` behind the router) on an
//! executor over `SimPoller`, driven by simulated clients drawn from a seed ([`plan`]), checked by
//! [`check`]. Everything comes from the seed: the same seed, the same trace, byte for byte.
#![allow(dead_code)]

pub mod check;
pub mod client;
pub mod plan;
pub mod wire;

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore::apps::{Echo, Hello, Sleep, Upload, WsEcho};
use asycamore::config::Config;
use asycamore::executor::sim::SimPoller;
use asycamore::executor::{Coroutine, Cx, Executor, Step};
use asycamore::middleware::Router;
use asycamore::server::{ShutdownHandle, WorkerSetup, spawn_worker};
use asycamore::service::{App, Environ, Exchange, Handler, Tunnel, Upgraded, from_fn};
use asycamore::shutdown::WorkerShutdown;
use asycamore::stats::ServerStats;

use client::{Client, Observations};
use plan::Scenario;

/// How long in-flight connections get after the shutdown begins (the server's `--grace`); longer
/// than every timeout, so a connection still open then is stuck.
pub const GRACE: Duration = Duration::from_secs(60);

/// Virtual time after which a run is declared stuck.
pub const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Resumes at one virtual instant after which a run is declared to spin (a task woken again and
/// again without time passing: a deadline in the past re-registered, say).
pub const SPIN_LIMIT: u64 = 50_000;

/// What one run gave.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every violation, one line each; empty when the run passed.
    pub violations: Vec<String>,
    /// The scheduler's trace with times, when asked for.
    pub trace: Vec<String>,
    /// Requests the server parsed.
    pub requests: u64,
    /// What each client planned and saw, one line each (with the trace).
    pub summary: Vec<String>,
    /// What each client sent and saw.
    pub observed: Vec<client::Observed>,
}

/// One client's plan and observation in a few lines, for a replayed seed.
fn describe(o: &client::Observed) -> Vec<String> {
    let p = &o.plan;
    let mut lines = vec![format!(
        "client {}: {:?}, connects at {:?}, {} segments, stop reading after {:?}, read pace {:?}, reset after {:?}, {:?}; ended {:?} (accepted {:?}, server closed {:?}, last byte from server {:?}){}",
        p.id,
        p.kind,
        p.connect_at,
        p.segments.len(),
        p.stop_reading_after,
        p.read_pace,
        p.reset_after,
        p.ending,
        o.end,
        o.accepted_at,
        o.peer_closed_at,
        o.last_received_at,
        if o.abandoned {
            ", abandoned after a final answer"
        } else {
            ""
        }
    )];
    for (i, r) in p.requests.iter().enumerate() {
        let line = String::from_utf8_lossy(&r.bytes[..r.head_len.min(r.bytes.len())]);
        let line = line.lines().next().unwrap_or_default().to_owned();
        lines.push(format!(
            "  request {i}: {line:?} {:?}, body {} bytes, expect {:?}, close {}",
            r.route,
            r.body.len(),
            r.expect,
            r.wants_close
        ));
    }
    for (k, seg) in p.segments.iter().enumerate() {
        lines.push(format!(
            "  segment {k} (request {}): {} bytes after {:?}, {:?}, sent {:?}",
            p.owner[k],
            seg.bytes.len(),
            seg.delay,
            seg.gate,
            o.sent[k]
        ));
    }
    for r in &o.reader.responses {
        lines.push(format!(
            "  response to {}: {} {} bytes, head at {:?}, done at {:?}, connection {:?}",
            r.request,
            r.status,
            r.body.len(),
            r.head_at,
            r.done_at,
            r.header("connection")
        ));
    }
    if let Some(e) = &o.reader.error {
        lines.push(format!("  stream error: {e}"));
        let bytes = o.reader.bytes();
        let tail = &bytes[bytes.len().saturating_sub(400)..];
        lines.push(format!(
            "  last bytes received: {:?}",
            String::from_utf8_lossy(tail)
        ));
    }
    lines
}

/// Begins the graceful shutdown at a virtual time, as a signal would.
struct ShutdownAt {
    at: Instant,
    base: Instant,
    handle: ShutdownHandle,
    began: Rc<Cell<Option<Duration>>>,
}

impl Coroutine for ShutdownAt {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if cx.now() < self.at {
            cx.wait_until(self.at);
            return Step::WouldBlock;
        }
        if self.began.get().is_none() {
            self.began.set(Some(cx.now() - self.base));
        }
        self.handle.begin();
        Step::Ready(())
    }

    fn kind(&self) -> &'static str {
        "signal"
    }
}

/// The demo applications the simulated worker serves: `hello`, `echo`, `upload`, `sleep`, and
/// the WebSocket echo at `/ws`.
pub fn demo_app() -> Rc<dyn App> {
    Rc::new(
        Router::new()
            .exact("/", Hello)
            .mount("/echo", Echo)
            .mount("/upload", Upload)
            .mount("/sleep", Sleep)
            .exact("/ws", WsEcho::new(asycamore::ws::MAX_MESSAGE))
            .exact(
                "/count",
                from_fn(|_: &mut Environ<'_>| Box::new(CountHandler)),
            ),
    )
}

/// Switches to the test protocol `count`.
struct CountHandler;

impl Handler for CountHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, _cx: &mut Cx<'_>) -> Step<()> {
        if let Err(e) = ex.switch_protocols("count", &[], Box::new(Count(0))) {
            ex.fail(e.status(), &e.to_string());
        }
        Step::Ready(())
    }
}

/// The test protocol `count`: reads to the client's end of input (a half-close), then answers
/// with how many bytes there were — a tunnel whose answer comes after its input has ended.
struct Count(usize);

impl Tunnel for Count {
    fn resume(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            let n = io.input().len();
            self.0 += n;
            io.consume(n);
            if io.peer_closed() {
                asycamore::executor::ready!(io.wait_room(cx));
                io.output()
                    .extend_from_slice(format!("{}\n", self.0).as_bytes());
                return Step::Ready(());
            }
            asycamore::executor::ready!(io.wait_input(cx));
        }
    }
}

/// Runs `scenario` against the demo applications to its end and checks it; with `trace`,
/// records the scheduler's trace (every decision, every wait, the connection's notes).
pub fn run(scenario: &Scenario, trace: bool) -> Outcome {
    run_app(scenario, trace, demo_app())
}

/// [`run`] with another application (the checker's rules then only fit where it behaves as the
/// demo applications do).
pub fn run_app(scenario: &Scenario, trace: bool, app: Rc<dyn App>) -> Outcome {
    let poller = SimPoller::new(scenario.seed);
    let sim = poller.handle();
    let mut executor = Executor::with_poller(poller).expect("a simulated executor");
    if trace {
        executor.enable_trace_waits();
    }
    sim.set_faults(scenario.faults);
    let base = sim.now();
    let t = scenario.timeouts;
    let config = Config {
        head_timeout: t.head,
        keepalive_timeout: t.keepalive,
        body_timeout: t.body,
        write_timeout: t.write,
        // Every WebSocket client ends with a close: the idle timeout only matters if the server
        // loses track of one.
        upgrade_idle_timeout: t.keepalive,
        output_high_water: scenario.output_high_water,
        drain_limit: scenario.drain_limit,
        ..Config::default()
    };
    let listener = sim.listener();
    let listener_fd = listener.as_raw_fd();
    let stats = Rc::new(ServerStats::default());
    let setup = WorkerSetup {
        app,
        config: Rc::new(config),
        stats: Rc::clone(&stats),
        shutdown: Rc::new(WorkerShutdown::default()),
        max_connections: None,
    };
    let watcher = spawn_worker(
        &mut executor,
        vec![(listener, SocketAddr::from(([127, 0, 0, 1], 80)))],
        setup,
    );
    let handle = ShutdownHandle::default();
    handle.register(watcher);
    let observations = Observations::default();
    for plan in &scenario.clients {
        executor.spawn(Client::new(
            &sim,
            listener_fd,
            plan.clone(),
            t,
            &observations,
        ));
    }
    let began = Rc::new(Cell::new(None));
    if let Some(at) = scenario.shutdown_at {
        executor.spawn(ShutdownAt {
            at: base + at,
            base,
            handle: handle.clone(),
            began: Rc::clone(&began),
        });
    }
    let mut outcome = Outcome::default();
    let mut instant = (Duration::ZERO, 0);
    loop {
        if let Err(e) = executor.turn() {
            outcome.violations.push(format!("the executor failed: {e}"));
            break;
        }
        let now = sim.elapsed();
        if observations.borrow().len() == scenario.clients.len() && !handle.has_begun() {
            // Every client is done: shut down, as the operator would, to see what is left.
            began.set(Some(now));
            handle.begin();
        }
        if executor.is_empty() {
            break;
        }
        let resumes = executor.stats().resumes;
        if now != instant.0 {
            instant = (now, resumes);
        } else if resumes - instant.1 > SPIN_LIMIT {
            outcome.violations.push(format!(
                "spinning: {SPIN_LIMIT} resumes at {now:?} without time passing"
            ));
            break;
        }
        if now > RUN_LIMIT {
            outcome.violations.push(format!(
                "not finished after {now:?}: {} tasks",
                executor.len()
            ));
            break;
        }
        if began.get().is_some_and(|b| now > b + GRACE) && stats.snapshot().connections_open > 0 {
            outcome.violations.push(format!(
                "{} connections outlived the grace period",
                stats.snapshot().connections_open
            ));
            break;
        }
    }
    let run = check::Run {
        shutdown_at: began.get(),
    };
    let observed = std::mem::take(&mut *observations.borrow_mut());
    if outcome.violations.is_empty() {
        if observed.len() != scenario.clients.len() {
            outcome.violations.push(format!(
                "{} of {} clients finished",
                observed.len(),
                scenario.clients.len()
            ));
        }
        for o in observed.iter() {
            outcome.violations.extend(check::client(scenario, &run, o));
        }
        let left = [
            ("tasks", executor.len()),
            ("descriptors waited on", executor.waited_fds()),
            ("timers", executor.armed_timers()),
            ("simulated sockets", sim.open_sockets()),
            ("registrations", sim.registered()),
            ("connections", stats.snapshot().connections_open as usize),
        ];
        for (what, n) in left {
            if n > 0 {
                outcome
                    .violations
                    .push(format!("{n} {what} left at the end"));
            }
        }
    }
    outcome.requests = stats.snapshot().requests;
    if trace {
        outcome.trace = executor.trace_lines_timed();
        outcome.summary = observed.iter().flat_map(describe).collect();
        outcome.summary.insert(
            0,
            format!(
                "seed {}: timeouts {:?}, output high water {}, drain limit {}, faults {:?}, shutdown at {:?}",
                scenario.seed,
                scenario.timeouts,
                scenario.output_high_water,
                scenario.drain_limit,
                scenario.faults,
                began.get()
            ),
        );
    }
    outcome.observed = observed;
    outcome
}
