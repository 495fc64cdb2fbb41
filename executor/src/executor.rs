//! The scheduler: tasks, the run queue, and the loop that drives them.
//!
//! One turn of the loop:
//!
//! 1. collect wakes from other threads and fire due timers;
//! 2. poll: with a zero timeout if anything is ready to run already (so a task that keeps
//!    yielding cannot starve tasks whose fds are ready), else until the nearest timer;
//! 3. mark the owners of ready fds ready, then collect wakes and fire due timers again (so a flood
//!    of ready fds cannot delay a timer by a turn);
//! 4. queue the tasks that yielded last turn, behind everything the poll made ready;
//! 5. resume at most [`Executor::set_budget`] queued tasks (those queued before this step; tasks
//!    spawned or readied while running go to the next turn).
//!
//! After each resume that returns `WouldBlock`, the task's new [`Waits`] are diffed against the
//! previous ones, so a task that keeps waiting on the same fd costs no poller change. A
//! descriptor it no longer waits on is deregistered, unless the task asked to keep it
//! registered ([`Cx::keep_registered`]): then it stays, with nobody waiting, until a task waits
//! on it again (no change if for the same readiness), it reports readiness (deregistered then)
//! or it is closed (forgotten then). A proxy's pooled upstream connection so costs no
//! registration per request.
//!
//! Timers are armed lazily: a task that moves its deadline later (a connection pushing its idle
//! timeout forward after every request) keeps the timer it has; when that timer fires, the task
//! is resumed only if its current deadline has passed, else the timer is re-armed for it. A
//! keep-alive connection so costs one timer operation per timeout period, not one per request.
//! Only a deadline moved earlier cancels and re-arms at once.
//!
//! A task that returns `WouldBlock` without waiting for anything could never be resumed: the
//! executor records it in the trace as abandoned and drops it (closing whatever it owned), so
//! [`Executor::run`] still returns once the real work is done.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::net::{Sends, sends_on_this_thread};
use crate::poller::{Event, Interest, PollPoller, Poller};
use crate::step::{Coroutine, Cx, Reason, Step, Task, Waits};
pub use crate::task::TaskId;
use crate::timer::{TimerId, Timers};
use crate::wake::{WakeQueue, Waker};

/// How many resumes one turn allows by default before polling again: as many as one `epoll_wait`
/// returns at most, so a turn can serve everything one poll reports. A smaller budget leaves
/// ready tasks queued across the next poll, and level-triggered epoll then asks each of their
/// sockets again whether it is ready, only for the answer to be dropped (the task is queued
/// already): at 1,000 busy keep-alive connections, about 440 ready per poll, a budget of 256
/// cost 10–25% more CPU per request than serving the whole batch. The price: timers and wakes
/// from other threads wait for the turn to end, up to 4,096 resumes (some 16 ms of small
/// request steps, more if the steps copy large bodies).
pub const DEFAULT_BUDGET: usize = crate::poller::MAX_EVENTS_PER_POLL;

/// One scheduling decision, as recorded in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEvent {
    /// A task was added (it is queued with [`Reason::Spawned`]).
    Spawned {
        /// The new task.
        task: TaskId,
        /// Its [`Coroutine::kind`].
        kind: &'static str,
    },
    /// A task was resumed.
    Resumed {
        /// The task.
        task: TaskId,
        /// Why.
        reason: Reason,
        /// For [`Reason::Fd`], the readiness that was reported.
        event: Option<Event>,
    },
    /// A task returned `Ready` and was dropped.
    Finished {
        /// The task.
        task: TaskId,
    },
    /// A task returned `WouldBlock` waiting for nothing, so it could never run again; it was
    /// dropped.
    Abandoned {
        /// The task.
        task: TaskId,
    },
    /// A wake named a task that no longer exists; it was ignored.
    StaleWake {
        /// The id the waker held.
        task: TaskId,
    },
    /// What a task said it was doing, through [`Cx::note`] (recorded only with
    /// [`Executor::enable_trace_waits`]).
    Note {
        /// The task.
        task: TaskId,
        /// What it said.
        text: String,
    },
    /// A task returned `WouldBlock` and now waits for what it registered in its [`Cx`]
    /// (recorded only with [`Executor::enable_trace_waits`]).
    Suspended {
        /// The task.
        task: TaskId,
        /// What it waits for.
        waits: WaitSummary,
    },
}

/// What a suspended task waits for, as the trace shows it: up to two descriptors (a connection
/// waits on one, a proxying handler on two) and how many more, the deadline as time since the
/// executor started (virtual under the simulator, so a trace replays byte for byte), a wake,
/// a yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitSummary {
    /// The first two descriptors waited on, in the order they were registered.
    pub fds: [Option<(RawFd, Interest)>; 2],
    /// Descriptors beyond those two.
    pub more_fds: usize,
    /// The deadline, as time since the executor was made.
    pub deadline: Option<Duration>,
    /// A [`Waker`] may resume it.
    pub wake: bool,
    /// It yielded.
    pub yielded: bool,
}

impl WaitSummary {
    fn of(waits: &Waits, start: Instant) -> WaitSummary {
        let mut fds = [None; 2];
        for (slot, &fd) in fds.iter_mut().zip(&waits.fds) {
            *slot = Some(fd);
        }
        WaitSummary {
            fds,
            more_fds: waits.fds.len().saturating_sub(2),
            deadline: waits.deadline.map(|d| d.saturating_duration_since(start)),
            wake: waits.wake,
            yielded: waits.yielded,
        }
    }
}

impl fmt::Display for WaitSummary {
    /// `fd 7 readable, deadline @10.000000s, wake`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .fds
            .iter()
            .flatten()
            .map(|&(fd, interest)| {
                let what = match interest {
                    Interest::Readable => "readable",
                    Interest::Writable => "writable",
                    Interest::Both => "readable+writable",
                };
                format!("fd {fd} {what}")
            })
            .collect();
        if self.more_fds > 0 {
            parts.push(format!("{} more fds", self.more_fds));
        }
        if let Some(d) = self.deadline {
            parts.push(format!("deadline @{:.6}s", d.as_secs_f64()));
        }
        if self.wake {
            parts.push("wake".into());
        }
        if self.yielded {
            parts.push("yield".into());
        }
        f.write_str(&parts.join(", "))
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TraceEvent::Note { task, ref text } => write!(f, "{task}   {text}"),
            TraceEvent::Spawned { task, kind } => write!(f, "{task} spawned ({kind})"),
            TraceEvent::Resumed {
                task,
                reason,
                event,
            } => {
                write!(f, "{task} resumed: ")?;
                match (reason, event) {
                    (Reason::Spawned, _) => write!(f, "spawned"),
                    (Reason::Fd(fd), Some(e)) => {
                        let what = match (e.readable, e.writable) {
                            (true, true) => "readable+writable",
                            (true, false) => "readable",
                            (false, true) => "writable",
                            (false, false) => "ready",
                        };
                        write!(f, "fd {fd} {what}")?;
                        if e.error {
                            write!(f, " (hup/error)")
                        } else {
                            Ok(())
                        }
                    }
                    (Reason::Fd(fd), None) => write!(f, "fd {fd} ready"),
                    (Reason::Deadline, _) => write!(f, "deadline"),
                    (Reason::Wake, _) => write!(f, "wake"),
                    (Reason::Yield, _) => write!(f, "yield"),
                }
            }
            TraceEvent::Finished { task } => write!(f, "{task} finished"),
            TraceEvent::Abandoned { task } => {
                write!(f, "{task} abandoned: WouldBlock with nothing to wait for")
            }
            TraceEvent::StaleWake { task } => write!(f, "{task} stale wake ignored"),
            TraceEvent::Suspended { task, waits } => write!(f, "{task} waits: {waits}"),
        }
    }
}

/// Counters describing what the executor has done; see [`Executor::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Turns of the loop.
    pub turns: u64,
    /// Calls to [`Poller::poll`].
    pub polls: u64,
    /// Readiness events those polls returned, in total.
    pub events: u64,
    /// Resumes of tasks.
    pub resumes: u64,
    /// Tasks spawned.
    pub spawned: u64,
    /// Tasks that finished.
    pub finished: u64,
    /// Tasks dropped for waiting on nothing.
    pub abandoned: u64,
    /// Timers armed (a deadline moved later keeps the armed one; see the module docs).
    pub timers_armed: u64,
    /// Time spent inside [`Poller::poll`], on the poller's clock (virtual under the simulator).
    pub poll_time: Duration,
    /// Time spent resuming tasks, on the poller's clock.
    pub run_time: Duration,
    /// Resumes per [`Coroutine::kind`], in order of first appearance.
    pub resumes_by_kind: Vec<(&'static str, u64)>,
    /// Sending system calls made by this executor's thread on real sockets since the executor
    /// was created, and their bytes (see [`crate::net::Sends`]; simulated sockets make none).
    /// Brought up to date at the end of every turn.
    pub sends: Sends,
}

impl Stats {
    /// Average number of events per poll.
    pub fn events_per_poll(&self) -> f64 {
        if self.polls == 0 {
            0.0
        } else {
            self.events as f64 / self.polls as f64
        }
    }

    /// Resumes of tasks of `kind`.
    pub fn resumes_of(&self, kind: &str) -> u64 {
        self.resumes_by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

/// Makes [`Executor::run`] and [`Executor::run_until`] return, from any thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    stopped: Arc<AtomicBool>,
    queue: Arc<WakeQueue>,
}

impl StopHandle {
    /// Asks the executor to stop at the start of its next turn, interrupting a blocked poll.
    /// Tasks are not dropped; the owner may drive them further with [`Executor::turn`].
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.queue.interrupt();
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the run queue, to be resumed for this reason.
    Queued(Reason, Option<Event>),
    /// Being resumed now.
    Running,
    /// Suspended until something in its waits happens.
    Waiting,
}

/// A live task and its bookkeeping.
struct Entry {
    /// `None` only while it is being resumed.
    coroutine: Option<Task>,
    /// Index into `Stats::resumes_by_kind`.
    kind: usize,
    /// What it waits for, as registered with the poller and the timers.
    waits: Waits,
    /// Its armed timer, if any: at or before the deadline in `waits` (armed lazily, see the
    /// module docs), or left over from an earlier wait.
    timer: Option<(Instant, TimerId)>,
    state: State,
    /// A wake arrived that it has not consumed yet (it was running, or not waiting for wakes).
    woken: bool,
}

/// What the executor knows of one descriptor number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdUse {
    /// Not registered with the poller.
    Free,
    /// Registered, and this task waits on it.
    Owned(TaskId),
    /// Registered with this interest, but no task waits on it: the task that stopped waiting
    /// asked to keep it ([`Cx::keep_registered`]: an upstream connection back in the proxy's
    /// pool), instead of a deregistration now and a registration at the next wait.
    /// Deregistered when it reports readiness with nobody waiting, forgotten when it is closed.
    Lingering(Interest),
}

/// One slot of the slab.
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// The scheduler. Owns tasks (boxed [`Coroutine`]s) and drives them with readiness from a
/// [`Poller`].
///
/// `Executor` is not `Send`: one executor per thread. Other threads reach its tasks through
/// [`Waker`]s and stop it through a [`StopHandle`].
pub struct Executor<P: Poller = PollPoller> {
    poller: P,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    run_queue: VecDeque<TaskId>,
    /// Tasks that yielded during the current turn; queued after the next poll.
    yielded: Vec<TaskId>,
    /// Which task waits on each fd (or that none does, though it stays registered), indexed by
    /// fd.
    fd_use: Vec<FdUse>,
    timers: Timers<TaskId>,
    wake_queue: Arc<WakeQueue>,
    stopped: Arc<AtomicBool>,
    budget: usize,
    /// Deadlines closer than this are waited for with zero-timeout polls, not a sleep
    /// ([`Executor::set_spin_window`]); zero by default.
    spin_window: Duration,
    stats: Stats,
    trace: Option<Vec<TraceEvent>>,
    /// When each trace event happened, as time since `start` (parallel to `trace`).
    trace_at: Vec<Duration>,
    /// Whether the trace records what each suspended task waits for.
    trace_waits: bool,
    /// The poller's clock when the executor was made: the origin of trace times.
    start: Instant,
    /// Notes the running task wrote through [`Cx::note`], reused between resumes.
    notes: Vec<String>,
    /// Descriptors the running task asked to keep registered ([`Cx::keep_registered`]).
    kept: Vec<RawFd>,
    // Buffers reused every turn or resume.
    events: Vec<Event>,
    woken: Vec<TaskId>,
    waits: Waits,
    spawned: Vec<Task>,
    /// Descriptor numbers closed since they were last settled ([`Executor::settle_closed`];
    /// see [`crate::poller::closed::note_closed`]).
    closed: Vec<RawFd>,
    /// The poller's clock as last read. A turn reads it at its start, after the poll, every
    /// [`RESUMES_PER_CLOCK_READ`] resumes and at its end, not once per resume and per timer: a
    /// clock read costs as much as a small step, and far more where the kernel must be asked.
    clock: Instant,
    /// This thread's [`Sends`] when the executor was made: [`Stats::sends`] counts from there.
    sends_at_start: Sends,
}

/// Resumes in a row that share one reading of the clock (see [`Cx::now`]).
const RESUMES_PER_CLOCK_READ: usize = 16;

impl Executor<PollPoller> {
    /// An executor over `poll(2)`.
    ///
    /// # Errors
    /// If the eventfd used for cross-thread wakes cannot be created.
    pub fn new() -> io::Result<Executor<PollPoller>> {
        Executor::with_poller(PollPoller::new())
    }
}

impl<P: Poller> Executor<P> {
    /// An executor over the given poller (for instance [`crate::sim::SimPoller`]).
    ///
    /// # Errors
    /// If the poller cannot create its notifier.
    pub fn with_poller(mut poller: P) -> io::Result<Executor<P>> {
        let notify = poller.notifier()?;
        let now = poller.now();
        // Closes recorded on this thread before (by an executor dropped here, say) name no
        // descriptor of this one.
        let mut closed = Vec::new();
        crate::poller::closed::take_closed(&mut closed);
        closed.clear();
        Ok(Executor {
            poller,
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            run_queue: VecDeque::new(),
            yielded: Vec::new(),
            fd_use: Vec::new(),
            timers: Timers::new(),
            wake_queue: Arc::new(WakeQueue::new(notify)),
            stopped: Arc::new(AtomicBool::new(false)),
            budget: DEFAULT_BUDGET,
            spin_window: Duration::ZERO,
            stats: Stats::default(),
            sends_at_start: sends_on_this_thread(),
            trace: None,
            trace_at: Vec::new(),
            trace_waits: false,
            start: now,
            notes: Vec::new(),
            kept: Vec::new(),
            events: Vec::new(),
            woken: Vec::new(),
            waits: Waits::default(),
            spawned: Vec::new(),
            closed,
            clock: now,
        })
    }

    /// Adds a task; it is first resumed with [`Reason::Spawned`] on the next turn.
    pub fn spawn(&mut self, task: impl Coroutine<Output = ()> + 'static) -> TaskId {
        self.insert(Box::new(task))
    }

    /// Runs until no task remains, or until a [`StopHandle`] stops it.
    ///
    /// # Errors
    /// If polling fails (not for errors of individual tasks, which handle their own).
    pub fn run(&mut self) -> io::Result<()> {
        while self.live > 0 && !self.is_stopped() {
            self.turn_limited(None)?;
        }
        Ok(())
    }

    /// Runs until no task remains (returns `true`), or until `deadline` on the poller's clock
    /// passes or a [`StopHandle`] stops it (returns `false`).
    ///
    /// # Errors
    /// If polling fails.
    pub fn run_until(&mut self, deadline: Instant) -> io::Result<bool> {
        loop {
            if self.live == 0 {
                return Ok(true);
            }
            if self.is_stopped() || self.clock >= deadline {
                return Ok(false);
            }
            self.turn_limited(Some(deadline))?;
        }
    }

    /// Runs one turn of the loop (see the module docs). Blocks in the poll if nothing is ready,
    /// until the nearest timer, a ready fd or a wake; returns at once if there are no tasks.
    ///
    /// # Errors
    /// If polling fails.
    pub fn turn(&mut self) -> io::Result<()> {
        self.turn_limited(None)
    }

    /// The number of live tasks.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True if no task is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// How many descriptors some task waits on (each registered with the poller once).
    pub fn waited_fds(&self) -> usize {
        self.fd_use
            .iter()
            .filter(|u| matches!(u, FdUse::Owned(_)))
            .count()
    }

    /// How many timers are armed and have neither fired nor been cancelled.
    pub fn armed_timers(&self) -> usize {
        self.timers.len()
    }

    /// A [`Waker`] for `task`, usable from any thread.
    pub fn waker(&self, task: TaskId) -> Waker {
        Waker::new(Arc::clone(&self.wake_queue), task)
    }

    /// A handle that stops [`Executor::run`] from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            stopped: Arc::clone(&self.stopped),
            queue: Arc::clone(&self.wake_queue),
        }
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sets how many tasks one turn may resume before polling again (at least 1).
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget.max(1);
    }

    /// Waits for a deadline closer than `window` by polling with a zero timeout, again and
    /// again, instead of sleeping in the kernel: waking from a sleep costs tens of microseconds
    /// on some machines (a virtual CPU's idle exit), and a load generator that sends on a
    /// schedule would measure its own lateness. Costs a busy core while deadlines are that close;
    /// zero (the default) never spins.
    pub fn set_spin_window(&mut self, window: Duration) {
        self.spin_window = window;
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Starts recording every scheduling decision (off by default; when off, recording costs one
    /// branch per decision).
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    /// Starts recording every scheduling decision and, after each resume that returns
    /// `WouldBlock`, what the task now waits for ([`TraceEvent::Suspended`]): the trace then
    /// says why each task sleeps as well as why it woke.
    pub fn enable_trace_waits(&mut self) {
        self.enable_trace();
        self.trace_waits = true;
    }

    /// The decisions recorded so far (empty unless [`Executor::enable_trace`] was called).
    pub fn trace(&self) -> &[TraceEvent] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// The trace, one readable line per decision (`t3 resumed: fd 7 readable`).
    pub fn trace_lines(&self) -> Vec<String> {
        self.trace().iter().map(ToString::to_string).collect()
    }

    /// The trace with the time of each decision, as time since the executor was made
    /// (`@0.250000s t3 resumed: deadline`). Under the simulator the times are virtual, so the
    /// same seed gives the same lines.
    pub fn trace_lines_timed(&self) -> Vec<String> {
        self.trace()
            .iter()
            .zip(&self.trace_at)
            .map(|(event, at)| format!("@{:.6}s {event}", at.as_secs_f64()))
            .collect()
    }

    /// Empties the trace, returning what it held; recording continues.
    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        self.trace_at.clear();
        self.trace.as_mut().map(mem::take).unwrap_or_default()
    }

    /// The poller.
    pub fn poller(&self) -> &P {
        &self.poller
    }

    /// The poller, mutably (the simulator's script lives there).
    pub fn poller_mut(&mut self) -> &mut P {
        &mut self.poller
    }

    /// The current time on the poller's clock.
    pub fn now(&self) -> Instant {
        self.poller.now()
    }

    /// Records the event `event` makes, if the trace is on (the event is not even built
    /// otherwise: a scheduling decision costs one branch when nobody is watching).
    #[inline]
    fn record(&mut self, event: impl FnOnce() -> TraceEvent) {
        if let Some(trace) = &mut self.trace {
            trace.push(event());
            self.trace_at
                .push(self.clock.saturating_duration_since(self.start));
        }
    }

    fn insert(&mut self, coroutine: Task) -> TaskId {
        let kind_name = coroutine.kind();
        let kinds = &mut self.stats.resumes_by_kind;
        let kind = match kinds.iter().position(|(k, _)| *k == kind_name) {
            Some(i) => i,
            None => {
                kinds.push((kind_name, 0));
                kinds.len() - 1
            }
        };
        let entry = Entry {
            coroutine: Some(coroutine),
            kind,
            waits: Waits::default(),
            timer: None,
            state: State::Queued(Reason::Spawned, None),
            woken: false,
        };
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.entry = Some(entry);
                TaskId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 tasks");
                self.slots.push(Slot {
                    generation: 0,
                    entry: Some(entry),
                });
                TaskId {
                    index,
                    generation: 0,
                }
            }
        };
        self.live += 1;
        self.stats.spawned += 1;
        self.run_queue.push_back(id);
        self.record(move || TraceEvent::Spawned {
            task: id,
            kind: kind_name,
        });
        id
    }

    fn entry_mut(&mut self, id: TaskId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Queues a waiting task; does nothing if it is queued or running already.
    fn make_ready(&mut self, id: TaskId, reason: Reason, event: Option<Event>) {
        if let Some(entry) = self.entry_mut(id)
            && entry.state == State::Waiting
        {
            entry.state = State::Queued(reason, event);
            self.run_queue.push_back(id);
        }
    }

    fn collect_wakes(&mut self) {
        if !self.wake_queue.is_pending() {
            return;
        }
        let mut woken = mem::take(&mut self.woken);
        self.wake_queue.collect(&mut woken);
        for id in woken.drain(..) {
            match self.entry_mut(id) {
                None => self.record(move || TraceEvent::StaleWake { task: id }),
                Some(entry) if entry.state == State::Waiting && entry.waits.wake => {
                    self.make_ready(id, Reason::Wake, None);
                }
                // Running, queued for something else, or not waiting for wakes yet: remember it
                // until the task next waits for wakes.
                Some(entry) => entry.woken = true,
            }
        }
        self.woken = woken;
    }

    fn fire_timers(&mut self) {
        let now = self.clock;
        while let Some((timer, id)) = self.timers.pop_due(now) {
            let Some(entry) = self.entry_mut(id) else {
                continue;
            };
            if entry.timer.map(|(_, t)| t) != Some(timer) {
                continue;
            }
            entry.timer = None;
            if entry.state != State::Waiting {
                // Running or queued already: it declares its waits again when it suspends.
                continue;
            }
            match entry.waits.deadline {
                Some(deadline) if deadline <= now => self.make_ready(id, Reason::Deadline, None),
                Some(deadline) => {
                    // The task moved its deadline later since this timer was armed.
                    let rearmed = self.timers.insert(deadline, id);
                    self.stats.timers_armed += 1;
                    if let Some(entry) = self.entry_mut(id) {
                        entry.timer = Some((deadline, rearmed));
                    }
                }
                None => {}
            }
        }
    }

    fn turn_limited(&mut self, limit: Option<Instant>) -> io::Result<()> {
        if self.live == 0 {
            return Ok(());
        }
        self.stats.turns += 1;
        self.clock = self.poller.now();
        self.collect_wakes();
        self.fire_timers();

        let timeout = if !self.run_queue.is_empty()
            || !self.yielded.is_empty()
            || self.wake_queue.is_pending()
        {
            Some(Duration::ZERO)
        } else {
            let until = match (self.timers.next_deadline(), limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            until
                .map(|d| d.saturating_duration_since(self.clock))
                .map(|t| {
                    if t < self.spin_window {
                        Duration::ZERO
                    } else {
                        t
                    }
                })
        };
        let mut events = mem::take(&mut self.events);
        let started = self.clock;
        let polled = self.poller.poll(&mut events, timeout);
        self.clock = self.poller.now();
        self.stats.poll_time += self.clock.saturating_duration_since(started);
        self.stats.polls += 1;
        self.stats.events += events.len() as u64;
        polled?;
        for event in events.drain(..) {
            match self.fd_use.get(event.fd as usize).copied() {
                Some(FdUse::Owned(owner)) => {
                    self.make_ready(owner, Reason::Fd(event.fd), Some(event));
                }
                // Ready with nobody waiting: level-triggered, it would be reported on every poll
                // until someone reads it, so it leaves the set now.
                Some(FdUse::Lingering(_)) => {
                    self.fd_use[event.fd as usize] = FdUse::Free;
                    let _ = self.poller.deregister(event.fd);
                }
                _ => {}
            }
        }
        self.events = events;
        self.collect_wakes();
        self.fire_timers();
        for id in mem::take(&mut self.yielded) {
            self.make_ready(id, Reason::Yield, None);
        }

        let n = self.run_queue.len().min(self.budget);
        if n > 0 {
            let started = self.clock;
            for i in 1..=n {
                let Some(id) = self.run_queue.pop_front() else {
                    break;
                };
                self.resume(id)?;
                if i % RESUMES_PER_CLOCK_READ == 0 {
                    self.clock = self.poller.now();
                }
            }
            self.clock = self.poller.now();
            self.stats.run_time += self.clock.saturating_duration_since(started);
            let now = sends_on_this_thread();
            self.stats.sends = Sends {
                calls: now.calls - self.sends_at_start.calls,
                bytes: now.bytes - self.sends_at_start.bytes,
            };
        }
        Ok(())
    }

    fn resume(&mut self, id: TaskId) -> io::Result<()> {
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        let State::Queued(reason, event) = entry.state else {
            return Ok(());
        };
        entry.state = State::Running;
        if reason == Reason::Wake {
            entry.woken = false;
        }
        let kind = entry.kind;
        let mut coroutine = entry
            .coroutine
            .take()
            .expect("a queued task holds its coroutine");
        self.stats.resumes += 1;
        self.stats.resumes_by_kind[kind].1 += 1;
        self.record(move || TraceEvent::Resumed {
            task: id,
            reason,
            event,
        });

        self.waits.clear();
        self.kept.clear();
        let step = {
            let mut cx = Cx::new(
                self.clock,
                reason,
                id,
                &mut self.waits,
                &mut self.spawned,
                &self.wake_queue,
            )
            .with_kept(&mut self.kept);
            if self.trace_waits {
                cx = cx.with_notes(&mut self.notes);
            }
            coroutine.resume(&mut cx)
        };
        for text in mem::take(&mut self.notes) {
            self.record(move || TraceEvent::Note { task: id, text });
        }
        let mut spawned = mem::take(&mut self.spawned);
        for task in spawned.drain(..) {
            self.insert(task);
        }
        self.spawned = spawned;

        match step {
            Step::Ready(()) => {
                self.remove(id, coroutine);
                self.stats.finished += 1;
                self.record(move || TraceEvent::Finished { task: id });
            }
            Step::WouldBlock if self.waits.is_empty() => {
                self.remove(id, coroutine);
                self.stats.abandoned += 1;
                self.record(move || TraceEvent::Abandoned { task: id });
            }
            Step::WouldBlock => {
                if let Some(entry) = self.entry_mut(id) {
                    entry.coroutine = Some(coroutine);
                }
                self.suspend(id)?;
            }
        }
        Ok(())
    }

    /// Applies the waits the task just declared (in `self.waits`), changing only what differs
    /// from the waits it had before.
    fn suspend(&mut self, id: TaskId) -> io::Result<()> {
        let new = mem::take(&mut self.waits);
        if self.trace_waits {
            let waits = WaitSummary::of(&new, self.start);
            self.record(move || TraceEvent::Suspended { task: id, waits });
        }
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        let old = mem::take(&mut entry.waits);
        let old_timer = entry.timer.take();

        // Numbers closed during this resume may name new sockets now (see `epoll`).
        self.settle_closed();
        for &(fd, interest) in &new.fds {
            let before = old.fds.iter().find(|(f, _)| *f == fd).map(|&(_, i)| i);
            if self.owner(fd) != Some(id) {
                self.claim(fd, id, interest)?;
            } else if self.closed.contains(&fd) {
                // Same number, perhaps another socket: register it afresh.
                let _ = self.poller.deregister(fd);
                self.poller.register(fd, interest)?;
            } else if before != Some(interest) {
                self.poller.modify(fd, interest)?;
            }
        }
        for &(fd, interest) in &old.fds {
            if !new.fds.iter().any(|&(f, _)| f == fd) && self.owner(fd) == Some(id) {
                if self.kept.contains(&fd) && !self.closed.contains(&fd) {
                    self.fd_use[fd as usize] = FdUse::Lingering(interest);
                } else {
                    self.fd_use[fd as usize] = FdUse::Free;
                    self.poller.deregister(fd)?;
                }
            }
        }
        let timer = match (old_timer, new.deadline) {
            // Armed at or before the deadline (or no deadline now): keep it; when it fires,
            // `fire_timers` re-arms or ignores it.
            (Some((armed, timer)), Some(deadline)) if armed <= deadline => Some((armed, timer)),
            (Some(armed), None) => Some(armed),
            (old_timer, Some(deadline)) => {
                if let Some((_, timer)) = old_timer {
                    self.timers.cancel(timer);
                }
                self.stats.timers_armed += 1;
                Some((deadline, self.timers.insert(deadline, id)))
            }
            (None, None) => None,
        };

        let (wake_now, yielded) = (new.wake, new.yielded);
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        entry.waits = new;
        entry.timer = timer;
        entry.state = State::Waiting;
        let woken = entry.woken;
        if wake_now && woken {
            self.make_ready(id, Reason::Wake, None);
        } else if yielded {
            self.yielded.push(id);
        }
        // Hand the old allocation back for the next resume.
        self.waits = old;
        Ok(())
    }

    fn owner(&self, fd: RawFd) -> Option<TaskId> {
        match self.fd_use.get(usize::try_from(fd).ok()?)? {
            FdUse::Owned(id) => Some(*id),
            _ => None,
        }
    }

    /// Takes the numbers closed on this thread since last asked (into `self.closed`) and
    /// forgets those left registered with nobody waiting: the close took them out of the set.
    fn settle_closed(&mut self) {
        crate::poller::closed::take_closed(&mut self.closed);
        for i in 0..self.closed.len() {
            let fd = self.closed[i];
            if let Some(u @ FdUse::Lingering(_)) = self.fd_use.get_mut(fd as usize) {
                *u = FdUse::Free;
                let _ = self.poller.forget_closed(fd);
            }
        }
    }

    /// Makes `id` the task waiting on `fd`. If another task was registered on it (against the
    /// one-waiter contract, or because it closed the fd and the number was reused), the newcomer
    /// takes it over.
    fn claim(&mut self, fd: RawFd, id: TaskId, interest: Interest) -> io::Result<()> {
        let slot = usize::try_from(fd)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "negative fd"))?;
        if self.fd_use.len() <= slot {
            self.fd_use.resize(slot + 1, FdUse::Free);
        }
        match self.fd_use[slot] {
            FdUse::Free => self.poller.register(fd, interest)?,
            FdUse::Lingering(registered) if registered == interest => {}
            FdUse::Owned(_) | FdUse::Lingering(_) => self.poller.modify(fd, interest)?,
        }
        self.fd_use[slot] = FdUse::Owned(id);
        Ok(())
    }

    /// Drops a task's registrations, then the task, and frees its slot. Deregistered before the
    /// coroutine (and the sockets it holds) is dropped: a socket closed first would stay in the
    /// epoll set if a duplicate of its descriptor kept it open (a listener shared with a
    /// restarted server), and could no longer be removed.
    fn remove(&mut self, id: TaskId, coroutine: Task) {
        let slot = &mut self.slots[id.index as usize];
        let Some(entry) = slot.entry.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.live -= 1;
        for &(fd, _) in &entry.waits.fds {
            if self.owner(fd) == Some(id) {
                self.fd_use[fd as usize] = FdUse::Free;
                // The fd may be closed already (by the task itself); nothing to undo then.
                let _ = self.poller.deregister(fd);
            }
        }
        if let Some((_, timer)) = entry.timer {
            self.timers.cancel(timer);
        }
        drop(coroutine);
        // What it kept registered and has closed, in its last resume or its drop.
        self.settle_closed();
    }
}

impl<P: Poller> fmt::Debug for Executor<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("live", &self.live)
            .field("queued", &self.run_queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
