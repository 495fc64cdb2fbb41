//! asycamore-executor: a minimal executor over `poll(2)` for hand-written resumable coroutines.
//!
//! # The picture
//!
//! Everything that can wait is a [`Coroutine`]: a hand-written enum whose variants are its states,
//! with one method, [`Coroutine::resume`], that advances it as far as it can and returns
//! [`Step::Ready`] (finished) or [`Step::WouldBlock`] after telling the [`Cx`] what should wake it:
//! an fd becoming readable or writable, a deadline, a [`Waker`], or just "after the others".
//!
//! The [`Executor`] owns top-level tasks ([`Task`] = boxed coroutine) and runs a loop: resume the
//! ready tasks (a bounded number per turn), poll the [`Poller`] until the nearest
//! [deadline](timer), mark the tasks whose fds are ready, repeat. The poller is `poll(2)`
//! ([`PollPoller`], the default) or, on Linux, `epoll(7)` ([`EpollPoller`], for many idle
//! connections). It counts what it does
//! ([`Executor::stats`]) and, when asked, records every scheduling decision in a trace
//! ([`Executor::enable_trace`]) that tests assert on.
//!
//! Around it:
//! - [`net`]: non-blocking TCP whose operations answer `io::Result<Step<T>>` instead of
//!   `EAGAIN`;
//! - [`unix`]: the same for Unix-domain stream sockets (a server behind nginx on one host);
//! - [`acceptor`]: the [`Acceptor`] task that accepts connections and spawns one
//!   task per client, backing off on `EMFILE`;
//! - [`echo`]: the smallest connection coroutine, used by the demo and the tests;
//! - [`sim`]: a deterministic poller with a virtual clock, scripted readiness and seeded fault
//!   injection, for tests that replay a schedule exactly.
//!
//! # Example
//!
//! Two tasks: one waits for a deadline, the other yields twice.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use executor::{Coroutine, Cx, Executor, Step};
//!
//! /// Sleeps once, then finishes.
//! enum Sleep {
//!     /// Not started.
//!     Start,
//!     /// Waiting for the deadline.
//!     Sleeping(Instant),
//! }
//!
//! impl Coroutine for Sleep {
//!     type Output = ();
//!     fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
//!         match *self {
//!             Sleep::Start => {
//!                 let until = cx.now() + Duration::from_millis(5);
//!                 *self = Sleep::Sleeping(until);
//!                 cx.wait_until(until);
//!                 Step::WouldBlock
//!             }
//!             Sleep::Sleeping(until) if cx.now() >= until => Step::Ready(()),
//!             Sleep::Sleeping(until) => {
//!                 cx.wait_until(until);
//!                 Step::WouldBlock
//!             }
//!         }
//!     }
//! }
//!
//! /// Yields `n` times.
//! struct Yielder(u32);
//!
//! impl Coroutine for Yielder {
//!     type Output = ();
//!     fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
//!         if self.0 == 0 {
//!             return Step::Ready(());
//!         }
//!         self.0 -= 1;
//!         cx.yield_now();
//!         Step::WouldBlock
//!     }
//! }
//!
//! let mut executor = Executor::new()?;
//! executor.enable_trace();
//! executor.spawn(Sleep::Start);
//! executor.spawn(Yielder(2));
//! executor.run()?;
//! assert_eq!(
//!     executor.trace_lines(),
//!     [
//!         "t0 spawned (task)",
//!         "t1 spawned (task)",
//!         "t0 resumed: spawned",
//!         "t1 resumed: spawned",
//!         "t1 resumed: yield",
//!         "t1 resumed: yield",
//!         "t1 finished",
//!         "t0 resumed: deadline",
//!         "t0 finished",
//!     ]
//! );
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

pub mod acceptor;
pub mod echo;
pub mod executor;
pub mod net;
pub mod poller;
pub mod sim;
pub mod step;
mod sys;
pub mod task;
pub mod timer;
pub mod unix;
pub mod wake;

pub use acceptor::Acceptor;
pub use executor::{Executor, Stats, StopHandle, TraceEvent, WaitSummary};
pub use net::{TcpListener, TcpStream};
#[cfg(target_os = "linux")]
pub use poller::EpollPoller;
pub use poller::{Event, Interest, PollPoller, Poller};
pub use step::{Coroutine, Cx, Next, Reason, Step, Task, WaitFds, Waits};
pub use task::TaskId;
pub use unix::{UnixListener, UnixStream};
pub use wake::{Notify, WakeQueue, Waker};
