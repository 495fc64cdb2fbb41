//! Studying the scheduler: each test runs a few small tasks and asserts the exact trace, so the
//! tests double as a walk through the loop. Read them in order.
//!
//! A trace line names a task by its slab slot (`t3`; `t3.1` for the next task in that slot) and
//! says what the executor decided: spawned, resumed and why, finished.
//!
//! Most run on the simulated poller, whose virtual clock makes timing exact; where it makes sense
//! the same schedule is checked on the real `poll(2)` poller too.

mod util;

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use executor::net::Stream;
use executor::sim::{Ready, SimPoller};
use executor::{EpollPoller, Executor, PollPoller, Poller, Step, TraceEvent};
use util::{
    ByteReader, Counting, Forgetful, IdleTimeout, ReadableOrDeadline, Sleep, WaitForWake, Yielder,
    assert_trace,
};

const MS: Duration = Duration::from_millis(1);

fn sim(seed: u64) -> (Executor<SimPoller>, executor::sim::Sim) {
    let poller = SimPoller::new(seed);
    let handle = poller.handle();
    let mut executor = Executor::with_poller(poller).unwrap();
    executor.enable_trace();
    (executor, handle)
}

fn real() -> Executor<PollPoller> {
    let mut executor = Executor::new().unwrap();
    executor.enable_trace();
    executor
}

/// The same schedules hold on the `epoll(7)` backend.
fn epoll() -> Executor<EpollPoller> {
    let mut executor = Executor::with_poller(EpollPoller::new().unwrap()).unwrap();
    executor.enable_trace();
    executor
}

/// Spawned tasks run in spawn order. Later, in one turn: the tasks whose fds the poll reported
/// (in the poller's order; the simulator's is by fd), then the tasks whose deadline passed during
/// the poll, then the tasks that yielded.
#[test]
fn resume_order_of_ready_tasks() {
    let (mut executor, sim) = sim(1);
    executor.spawn(Yielder(1));
    executor.spawn(ReadableOrDeadline::new(8, None));
    executor.spawn(ReadableOrDeadline::new(7, None));
    executor.spawn(Sleep::Start(10 * MS));
    sim.script(10 * MS, 8, Ready::Readable);
    sim.script(10 * MS, 7, Ready::Readable);
    executor.run().unwrap();
    assert_trace(
        &executor,
        &[
            "t0 spawned (yielder)",
            "t1 spawned (reader)",
            "t2 spawned (reader)",
            "t3 spawned (sleep)",
            // Turn 1: everything just spawned, in order.
            "t0 resumed: spawned",
            "t1 resumed: spawned",
            "t2 resumed: spawned",
            "t3 resumed: spawned",
            // Turn 2: only the yielder is ready; the poll does not wait because of it.
            "t0 resumed: yield",
            "t0 finished",
            // Turn 3: the poll waits until 10 ms, when both fds and the deadline are due.
            "t2 resumed: fd 7 readable",
            "t2 finished",
            "t1 resumed: fd 8 readable",
            "t1 finished",
            "t3 resumed: deadline",
            "t3 finished",
        ],
    );
    assert_eq!(sim.elapsed(), 10 * MS);
    assert_eq!(executor.stats().turns, 3);
}

fn woken_by_readable(executor: &mut Executor<impl Poller>, fd: RawFd) {
    executor.spawn(ReadableOrDeadline::new(fd, Some(50 * MS)));
    executor.run().unwrap();
    assert_trace(
        executor,
        &[
            "t0 spawned (reader)",
            "t0 resumed: spawned",
            &format!("t0 resumed: fd {fd} readable"),
            "t0 finished",
        ],
    );
}

/// A task waiting for readable-or-deadline, woken by the fd: its timer is cancelled with it, so
/// `run` returns as soon as it finishes, long before the deadline.
#[test]
fn readable_or_deadline_woken_by_readable() {
    let (mut executor, sim) = sim(1);
    sim.script(5 * MS, 7, Ready::Readable);
    woken_by_readable(&mut executor, 7);
    assert_eq!(sim.elapsed(), 5 * MS);

    let mut executor = real();
    let (writer, reader) = util::tcp_pair();
    assert_eq!(writer.write(b"x").unwrap(), Step::Ready(1));
    let started = Instant::now();
    woken_by_readable(&mut executor, reader.as_raw_fd());
    assert!(started.elapsed() < 50 * MS);

    let mut executor = epoll();
    let started = Instant::now();
    woken_by_readable(&mut executor, reader.as_raw_fd());
    assert!(started.elapsed() < 50 * MS);
}

fn woken_by_deadline(executor: &mut Executor<impl Poller>, fd: RawFd) {
    executor.spawn(ReadableOrDeadline::new(fd, Some(20 * MS)));
    executor.run().unwrap();
    assert_trace(
        executor,
        &[
            "t0 spawned (reader)",
            "t0 resumed: spawned",
            "t0 resumed: deadline",
            "t0 finished",
        ],
    );
}

/// The same task, woken by its deadline: the fd never becomes readable.
#[test]
fn readable_or_deadline_woken_by_deadline() {
    let (mut executor, sim) = sim(1);
    woken_by_deadline(&mut executor, 7);
    assert_eq!(
        sim.elapsed(),
        20 * MS,
        "the virtual clock jumps straight to the deadline"
    );

    let mut executor = real();
    let (_writer, reader) = util::tcp_pair();
    let started = Instant::now();
    woken_by_deadline(&mut executor, reader.as_raw_fd());
    assert!(started.elapsed() >= 20 * MS, "a deadline never fires early");

    let mut executor = epoll();
    let started = Instant::now();
    woken_by_deadline(&mut executor, reader.as_raw_fd());
    assert!(started.elapsed() >= 20 * MS, "a deadline never fires early");
}

fn timers_in_order(executor: &mut Executor<impl Poller>, fd: RawFd) {
    executor.spawn(Sleep::Start(30 * MS));
    executor.spawn(Sleep::Start(10 * MS));
    executor.spawn(Sleep::Start(20 * MS));
    executor.spawn(ReadableOrDeadline::new(fd, Some(15 * MS)));
    executor.run().unwrap();
    assert_trace(
        executor,
        &[
            "t0 spawned (sleep)",
            "t1 spawned (sleep)",
            "t2 spawned (sleep)",
            "t3 spawned (reader)",
            "t0 resumed: spawned",
            "t1 resumed: spawned",
            "t2 resumed: spawned",
            "t3 resumed: spawned",
            // The reader's fd is ready before its 15 ms deadline: that timer is cancelled and
            // never shows up.
            &format!("t3 resumed: fd {fd} readable"),
            "t3 finished",
            "t1 resumed: deadline",
            "t1 finished",
            "t2 resumed: deadline",
            "t2 finished",
            "t0 resumed: deadline",
            "t0 finished",
        ],
    );
}

/// Timers fire in deadline order, whatever the order they were set in; a cancelled one does not
/// fire at all.
#[test]
fn timers_fire_in_deadline_order_with_cancellation() {
    let (mut executor, sim) = sim(1);
    sim.script(5 * MS, 7, Ready::Readable);
    timers_in_order(&mut executor, 7);
    assert_eq!(sim.elapsed(), 30 * MS);

    let mut executor = real();
    let (writer, reader) = util::tcp_pair();
    assert_eq!(writer.write(b"x").unwrap(), Step::Ready(1));
    timers_in_order(&mut executor, reader.as_raw_fd());
}

/// A deadline pushed later on every wake keeps the timer it has: the executor re-arms it only
/// when it fires early (at 20 ms here, for the deadline first set at 0 ms), without resuming the
/// task; the task is resumed once, when its real deadline (10 ms + 20 ms) passes.
#[test]
fn a_deadline_moved_later_keeps_its_timer() {
    let (mut executor, sim) = sim(1);
    sim.script(5 * MS, 7, Ready::Readable);
    sim.script(10 * MS, 7, Ready::Readable);
    executor.spawn(IdleTimeout {
        fd: 7,
        idle: 20 * MS,
    });
    executor.run().unwrap();
    assert_trace(
        &executor,
        &[
            "t0 spawned (idle)",
            "t0 resumed: spawned",
            "t0 resumed: fd 7 readable",
            "t0 resumed: fd 7 readable",
            "t0 resumed: deadline",
            "t0 finished",
        ],
    );
    assert_eq!(sim.elapsed(), 30 * MS, "never early, never late");
    assert_eq!(executor.stats().resumes, 4);
    assert_eq!(
        executor.stats().timers_armed,
        2,
        "armed for 20 ms, re-armed once for 30 ms; not once per wake"
    );
}

fn yield_and_fd(executor: &mut Executor<impl Poller>, stream: impl Stream + 'static) {
    let fd = stream.as_raw_fd();
    executor.spawn(Yielder(3));
    executor.spawn(ByteReader { stream, want: 3 });
    executor.run().unwrap();
    let readable = format!("t1 resumed: fd {fd} readable");
    assert_trace(
        executor,
        &[
            "t0 spawned (yielder)",
            "t1 spawned (byte-reader)",
            "t0 resumed: spawned",
            "t1 resumed: spawned",
            // Each turn polls (with a zero timeout, since the yielder is ready) before running
            // the yielder again, so the reader gets its turn every time: fd-ready tasks first,
            // then yielded ones.
            &readable,
            "t0 resumed: yield",
            &readable,
            "t1 finished",
            "t0 resumed: yield",
            "t0 resumed: yield",
            "t0 finished",
        ],
    );
}

/// A task that keeps yielding shares the loop fairly with one driven by its fd.
#[test]
fn a_yielding_task_shares_the_loop_with_an_fd_driven_one() {
    let (mut executor, sim) = sim(1);
    let (mut writer, reader) = sim.pair();
    assert_eq!(writer.write(b"abc").unwrap(), Step::Ready(3));
    yield_and_fd(&mut executor, reader);

    let mut executor = real();
    let (writer, reader) = util::tcp_pair();
    assert_eq!(writer.write(b"abc").unwrap(), Step::Ready(3));
    yield_and_fd(&mut executor, reader);

    let mut executor = epoll();
    let (writer, reader) = util::tcp_pair();
    assert_eq!(writer.write(b"abc").unwrap(), Step::Ready(3));
    yield_and_fd(&mut executor, reader);
}

fn stale_id(executor: &mut Executor<impl Poller>) {
    let first = executor.spawn(Yielder(0));
    executor.run().unwrap();
    let second = executor.spawn(WaitForWake::new(Some(10 * MS)));
    assert_eq!(first.index, second.index, "the slot is reused");
    executor.waker(first).wake();
    executor.run().unwrap();
    assert_trace(
        executor,
        &[
            "t0 spawned (yielder)",
            "t0 resumed: spawned",
            "t0 finished",
            "t0.1 spawned (waiter)",
            // The old id's generation is 0, the slot's is now 1: the wake is dropped, and the
            // new task waits for its deadline.
            "t0 stale wake ignored",
            "t0.1 resumed: spawned",
            "t0.1 resumed: deadline",
            "t0.1 finished",
        ],
    );
}

/// A waker for a finished task never wakes the task that took its slot.
#[test]
fn a_stale_task_id_is_ignored() {
    stale_id(&mut sim(1).0);
    stale_id(&mut real());
    stale_id(&mut epoll());
}

fn cross_thread_wake(executor: &mut Executor<impl Poller>) {
    let id = executor.spawn(WaitForWake::new(None));
    let waker = executor.waker(id);
    let thread = std::thread::spawn(move || {
        std::thread::sleep(20 * MS);
        waker.wake();
    });
    executor.run().unwrap();
    thread.join().unwrap();
    assert_trace(
        executor,
        &[
            "t0 spawned (waiter)",
            "t0 resumed: spawned",
            "t0 resumed: wake",
            "t0 finished",
        ],
    );
}

/// A wake from another thread interrupts a poll that has no timeout.
#[test]
fn a_wake_from_another_thread() {
    cross_thread_wake(&mut real());
    cross_thread_wake(&mut epoll());
    cross_thread_wake(&mut sim(1).0);
}

/// A wake that arrives before the task waits for wakes is remembered, not lost.
#[test]
fn a_wake_before_the_task_waits_is_not_lost() {
    let mut executor = real();
    let id = executor.spawn(WaitForWake::new(None));
    executor.waker(id).wake();
    executor.run().unwrap();
    assert_trace(
        &executor,
        &[
            "t0 spawned (waiter)",
            "t0 resumed: spawned",
            "t0 resumed: wake",
            "t0 finished",
        ],
    );
}

/// A task that returns `WouldBlock` without waiting for anything could never run again: it is
/// recorded and dropped, and `run` returns.
#[test]
fn a_task_waiting_for_nothing_is_abandoned() {
    let (mut executor, _) = sim(1);
    executor.spawn(Forgetful);
    executor.run().unwrap();
    assert_trace(
        &executor,
        &[
            "t0 spawned (forgetful)",
            "t0 resumed: spawned",
            "t0 abandoned: WouldBlock with nothing to wait for",
        ],
    );
    assert_eq!(executor.stats().abandoned, 1);
}

/// An executor over the simulator whose poller counts registration changes.
fn counting_sim(seed: u64) -> (Executor<Counting<SimPoller>>, executor::sim::Sim) {
    let inner = SimPoller::new(seed);
    let sim = inner.handle();
    let executor = Executor::with_poller(Counting {
        inner,
        changes: [0; 4],
    })
    .unwrap();
    (executor, sim)
}

/// Waits are declared afresh on every resume, but only differences reach the poller: a task
/// that waits on the same fd three times registers it once.
#[test]
fn waiting_again_on_the_same_fd_costs_no_poller_change() {
    let (mut executor, sim) = counting_sim(1);
    let (mut writer, reader) = sim.pair();
    assert_eq!(writer.write(b"abc").unwrap(), Step::Ready(3));
    executor.spawn(ByteReader {
        stream: reader,
        want: 4,
    });
    executor.run_until(sim.now() + 10 * MS).unwrap();
    assert_eq!(
        executor.poller().changes,
        [1, 0, 0, 0],
        "[register, modify, deregister, forget_closed]"
    );
    drop(writer);
    executor.run().unwrap();
    assert_eq!(executor.poller().changes, [1, 0, 1, 0]);
    assert_eq!(executor.stats().resumes, 4);
}

/// A task that ends by dropping the socket it waited on has it deregistered first, while the
/// descriptor is still open (closed first, a socket a duplicate keeps open would stay in the
/// epoll set for good); the next socket given the same number is registered afresh and woken.
#[test]
fn a_socket_closed_as_its_task_ends_is_deregistered_before_the_close() {
    let mut executor = Executor::with_poller(Counting {
        inner: EpollPoller::new().unwrap(),
        changes: [0; 4],
    })
    .unwrap();
    let registered = executor.poller().inner.len();
    let mut numbers = Vec::new();
    for round in 1..=2 {
        let (writer, reader) = util::tcp_pair();
        numbers.push(reader.as_raw_fd());
        executor.spawn(ByteReader {
            stream: reader,
            want: 1,
        });
        executor.turn().unwrap(); // waits: nothing to read yet
        assert!(matches!(writer.write(b"x"), Ok(Step::Ready(1))));
        executor.run().unwrap();
        assert_eq!(executor.stats().finished, round);
        assert_eq!(
            executor.poller().changes,
            [round as u32, 0, round as u32, 0],
            "[register, modify, deregister, forget_closed]"
        );
        assert_eq!(executor.poller().inner.len(), registered);
    }
    assert_eq!(
        numbers[0], numbers[1],
        "the second socket took the first one's number"
    );
}

/// Waits on its socket, then only on a deadline (keeping the socket registered if `keep`), then
/// on the socket again, a millisecond apart: a connection between two uses of a pooled upstream
/// socket.
struct Phases {
    fd: RawFd,
    keep: bool,
    phase: u32,
}

impl executor::Coroutine for Phases {
    type Output = ();
    fn resume(&mut self, cx: &mut executor::Cx<'_>) -> Step<()> {
        self.phase += 1;
        let later = cx.now() + MS;
        match self.phase {
            1 | 3 => cx.wait_readable(self.fd),
            2 if self.keep => cx.keep_registered(self.fd),
            2 => {}
            _ => return Step::Ready(()),
        }
        cx.wait_until(later);
        Step::WouldBlock
    }
}

/// A socket a task stops waiting on but keeps registered ([`executor::Cx::keep_registered`])
/// costs nothing to wait on again; if it turns ready with nobody waiting, it leaves the set then
/// (level-triggered, it would be reported on every poll). Not kept, it is deregistered at once.
#[test]
fn a_socket_kept_registered_stays_until_it_turns_ready() {
    for (keep, ready_meanwhile) in [(true, false), (true, true), (false, false)] {
        let (mut executor, sim) = counting_sim(3);
        let (mut writer, reader) = sim.pair();
        executor.spawn(Phases {
            fd: reader.as_raw_fd(),
            keep,
            phase: 0,
        });
        executor.run_until(sim.now() + MS + MS / 2).unwrap(); // in phase 2
        let in_phase_2 = if keep { [1, 0, 0, 0] } else { [1, 0, 1, 0] };
        assert_eq!(
            executor.poller().changes,
            in_phase_2,
            "[register, modify, deregister, forget_closed]"
        );
        if ready_meanwhile {
            assert_eq!(writer.write(b"x").unwrap(), Step::Ready(1));
        }
        executor.run().unwrap();
        let expected = if ready_meanwhile || !keep {
            [2, 0, 2, 0] // left (at the readiness, or at once), registered again in phase 3
        } else {
            [1, 0, 1, 0] // phase 3 found it registered
        };
        assert_eq!(
            executor.poller().changes,
            expected,
            "keep {keep}, ready meanwhile {ready_meanwhile}"
        );
        drop(reader);
    }
}

/// The budget bounds the resumes of one turn; the rest wait for the next turn (after a poll).
#[test]
fn the_budget_bounds_resumes_per_turn() {
    let (mut executor, _) = sim(1);
    executor.set_budget(2);
    for _ in 0..5 {
        executor.spawn(Yielder(0));
    }
    executor.run().unwrap();
    assert_eq!(executor.stats().turns, 3);
    assert_eq!(executor.stats().polls, 3);
}

/// By default one turn resumes every task its poll made ready: 300 sockets readable at once take
/// one poll of the `epoll(7)` backend, and none is reported twice. With a budget below the batch,
/// the tasks left queued across the next poll have their level-triggered sockets reported again,
/// for nothing: the cost this default avoids.
#[test]
fn the_default_budget_serves_a_whole_poll() {
    fn run(budget: Option<usize>) -> u64 {
        let mut executor = epoll();
        if let Some(budget) = budget {
            executor.set_budget(budget);
        }
        let mut reported = 0;
        // The first round grows the poller's event buffer (it starts small and doubles when a
        // poll fills it); the second is the one counted.
        for _ in 0..2 {
            let mut writers = Vec::new();
            let mut readers = Vec::new();
            for _ in 0..300 {
                let (writer, reader) = util::tcp_pair();
                executor.spawn(ReadableOrDeadline::new(reader.as_raw_fd(), None));
                writers.push(writer);
                readers.push(reader);
            }
            executor.turn().unwrap(); // every task waits on its socket
            for writer in &mut writers {
                assert!(matches!(writer.write(b"x"), Ok(Step::Ready(1))));
            }
            std::thread::sleep(10 * MS); // loopback delivers every byte
            let before = executor.stats().events;
            executor.run().unwrap();
            reported = executor.stats().events - before;
        }
        assert_eq!(executor.stats().finished, 600);
        reported
    }
    assert_eq!(run(None), 300, "each ready socket reported once");
    assert_eq!(
        run(Some(256)),
        300 + 44,
        "the 44 left queued are reported again"
    );
}

/// Ten thousand tasks of three kinds, with seeded delays: every one finishes and the trace has
/// exactly the lines their kinds predict.
#[test]
fn ten_thousand_tasks_in_the_simulator() {
    let (mut executor, sim) = sim(2024);
    let mut expected_lines = 0;
    let mut latest = Duration::ZERO;
    for i in 0..10_000 {
        let delay = Duration::from_micros(sim.random() % 1_000_000);
        match i % 3 {
            0 => {
                executor.spawn(Sleep::Start(delay));
                expected_lines += 4; // spawned, resumed: spawned, resumed: deadline, finished
                latest = latest.max(delay);
            }
            1 => {
                executor.spawn(Yielder(2));
                expected_lines += 5; // spawned, three resumes, finished
            }
            _ => {
                let fd = 10 + i;
                executor.spawn(ReadableOrDeadline::new(fd, Some(Duration::from_secs(2))));
                sim.script(delay, fd, Ready::Readable);
                expected_lines += 4; // spawned, resumed: spawned, resumed: fd, finished
                latest = latest.max(delay);
            }
        }
    }
    executor.run().unwrap();
    let trace = executor.trace();
    assert_eq!(trace.len(), expected_lines);
    let finished = trace
        .iter()
        .filter(|e| matches!(e, TraceEvent::Finished { .. }))
        .count();
    assert_eq!(finished, 10_000);
    assert_eq!(executor.stats().finished, 10_000);
    assert_eq!(sim.elapsed(), latest, "no reader hit its 2 s timeout");
}
