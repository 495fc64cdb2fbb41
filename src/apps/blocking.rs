//! `blocking`: runs a blocking call (`thread::sleep` of `?ms=N`) on the thread pool, and answers
//! `200` when it is done, while the loop serves everyone else.
//!
//! A tutorial of the third way to wait, after a socket and a timer: a wake from another thread.
//! The handler hands [`ThreadPool::call`] the blocking closure (which submits it with a
//! [`Waker`] for the handler's own task, `cx.waker()`) and polls the [`Pending`] result it gets:
//! not there yet, so `cx.wait_wake()` and `WouldBlock`. When a pool thread finishes it
//! fills the handler's [`Pending`] slot and wakes the task; the executor's poll returns (the waker
//! writes to its eventfd), the connection resumes the handler, and the handler takes the result.
//!
//! When the pool's queue is full the `Pending` holds [`CallError::QueueFull`] from the start, and
//! the handler answers `503` on its first poll, with `Retry-After`: better a quick "not now" than a
//! request queued behind work that will take minutes.
//!
//! [`Waker`]: executor::Waker

use std::sync::Arc;
use std::time::Duration;

use executor::{Cx, Step, ready};

use crate::apps::sleep::{MAX_SLEEP_MS, milliseconds};
use crate::pool::{CallError, Pending, ThreadPool};
use crate::service::{App, Environ, Exchange, Handler, Method};

/// The `blocking` application: a handle on the shared pool.
#[derive(Debug, Clone)]
pub struct Blocking {
    pool: Arc<ThreadPool>,
}

impl Blocking {
    /// Runs its blocking work on `pool`.
    pub fn new(pool: Arc<ThreadPool>) -> Blocking {
        Blocking { pool }
    }
}

/// The handler of one `blocking` request.
#[derive(Debug)]
pub enum BlockingHandler {
    /// Not submitted yet.
    Start(Arc<ThreadPool>),
    /// Submitted (or refused by a full queue): a pool thread fills `result` and wakes the task.
    Waiting {
        /// Where the pool thread puts what the work returned.
        result: Pending<u64>,
    },
}

impl App for Blocking {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(BlockingHandler::Start(Arc::clone(&self.pool)))
    }
}

impl Handler for BlockingHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match self {
                BlockingHandler::Start(pool) => {
                    let ms = match milliseconds(ex, MAX_SLEEP_MS) {
                        Ok(ms) => ms,
                        Err(reason) => {
                            ex.fail(400, &reason);
                            return Step::Ready(());
                        }
                    };
                    // The closure runs on a pool thread: it may block as long as it likes.
                    let work = move || {
                        std::thread::sleep(Duration::from_millis(ms));
                        ms
                    };
                    *self = BlockingHandler::Waiting {
                        result: pool.call(work, cx),
                    };
                }
                // Resumed by the pool thread's wake, or for another reason (a shutdown wake,
                // say) while the work still runs: then `poll` waits again.
                BlockingHandler::Waiting { result } => {
                    match ready!(result.poll(cx)) {
                        Ok(ms) => {
                            let body = format!("slept {ms} ms on the pool\n");
                            ex.respond(
                                200,
                                &[("Content-Type", "text/plain; charset=utf-8")],
                                body.as_bytes(),
                            );
                        }
                        // RFC 9110 §10.2.3: say when to come back.
                        Err(full @ CallError::QueueFull) => ex.respond(
                            503,
                            &[
                                ("Content-Type", "text/plain; charset=utf-8"),
                                ("Retry-After", "1"),
                            ],
                            format!("{full}; try again later\n").as_bytes(),
                        ),
                        Err(CallError::Panicked) => ex.fail(500, "the blocking work panicked"),
                    }
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "blocking"
    }
}
