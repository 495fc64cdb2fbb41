//! [`Timer`]: a deadline as a coroutine a handler keeps in one of its states and polls, the way
//! a generator delegates with PEP 380's `yield from`.
//!
//! Waiting in a handler means three things done together: remember the deadline, tell `cx` to
//! resume at it, and check the clock on every resume (a handler may be resumed early, by a
//! shutdown wake or a body event). `Timer` does the three in one call, so a state that waits is
//! one variant holding a `Timer`:
//!
//! ```
//! use std::time::Duration;
//! use asycamore::executor::{Cx, Step};
//! use asycamore::service::{Exchange, Handler, Timer};
//!
//! /// Answers 200 a second after the request.
//! enum Later {
//!     /// Nothing done yet.
//!     Start,
//!     /// Waiting for the timer.
//!     Waiting(Timer),
//! }
//!
//! impl Handler for Later {
//!     fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
//!         loop {
//!             match self {
//!                 Later::Start => *self = Later::Waiting(Timer::after(Duration::from_secs(1), cx)),
//!                 Later::Waiting(timer) => {
//!                     if let Step::WouldBlock = timer.poll(cx) {
//!                         return Step::WouldBlock;
//!                     }
//!                     ex.respond(200, &[("Content-Type", "text/plain")], b"later\n");
//!                     return Step::Ready(());
//!                 }
//!             }
//!         }
//!     }
//! }
//! # fn main() {}
//! ```

use std::time::{Duration, Instant};

use executor::{Cx, Step};

/// A deadline: [`Timer::poll`] is `Ready` once it has passed, and until then registers it in
/// `cx` and answers `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    until: Instant,
}

impl Timer {
    /// A timer that fires `duration` after the executor's clock now (`cx.now()`, the time of this
    /// turn).
    pub fn after(duration: Duration, cx: &Cx<'_>) -> Timer {
        Timer {
            until: cx.now() + duration,
        }
    }

    /// A timer that fires at `until`.
    pub fn at(until: Instant) -> Timer {
        Timer { until }
    }

    /// When it fires.
    pub fn deadline(&self) -> Instant {
        self.until
    }

    /// `Ready` once the deadline has passed; otherwise asks `cx` to resume the task at the
    /// deadline and answers `WouldBlock` (return it from the handler).
    pub fn poll(&self, cx: &mut Cx<'_>) -> Step<()> {
        if cx.now() >= self.until {
            Step::Ready(())
        } else {
            cx.wait_until(self.until);
            Step::WouldBlock
        }
    }
}
