//! `sleep`: answers `200` after `?ms=N` milliseconds, using a timer and no thread.
//!
//! A tutorial of waiting on a deadline. A blocking server would call `thread::sleep` and hold its
//! loop (and every other client) for the whole time; here the handler computes a deadline, tells
//! `cx` to resume it then (`cx.wait_until`), and returns `WouldBlock`. The executor keeps the
//! deadline in its timer heap and serves other connections meanwhile, so a thousand sleeping
//! requests cost a thousand small enums, not a thousand threads.
//!
//! The handler checks the clock on every resume rather than trusting that a resume means "the
//! deadline has passed": the connection may resume it for other reasons (a shutdown wake, say),
//! and a coroutine must always be ready to be resumed early. [`Timer`] does both — registers the
//! deadline, checks the clock — so the waiting state is one variant holding it.

use std::time::Duration;

use executor::{Cx, Step};

use crate::service::{App, Environ, Exchange, Handler, Method, Timer};

/// The longest sleep a request may ask for, in milliseconds; more is a 400.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The `sleep` application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sleep;

/// The handler of one `sleep` request.
#[derive(Debug)]
pub enum SleepHandler {
    /// The request has not been looked at yet.
    Start,
    /// Waiting for the deadline; `ms` is what was asked for, for the answer.
    Sleeping {
        /// When to answer.
        timer: Timer,
        /// The requested sleep, in milliseconds.
        ms: u64,
    },
}

impl App for Sleep {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(SleepHandler::Start)
    }
}

impl Handler for SleepHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match *self {
                SleepHandler::Start => match milliseconds(ex, MAX_SLEEP_MS) {
                    Ok(ms) => {
                        let timer = Timer::after(Duration::from_millis(ms), cx);
                        *self = SleepHandler::Sleeping { timer, ms };
                    }
                    Err(reason) => {
                        ex.fail(400, &reason);
                        return Step::Ready(());
                    }
                },
                SleepHandler::Sleeping { timer, ms } => {
                    if let Step::WouldBlock = timer.poll(cx) {
                        // Not yet: resumed at the deadline; the loop goes on meanwhile.
                        return Step::WouldBlock;
                    }
                    let body = format!("slept {ms} ms\n");
                    ex.respond(
                        200,
                        &[("Content-Type", "text/plain; charset=utf-8")],
                        body.as_bytes(),
                    );
                    return Step::Ready(());
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "sleep"
    }
}

/// The `ms` query parameter: decimal digits, at most `max`.
///
/// # Errors
/// A one-line reason for the 400 when it is missing, not a number, or too large.
pub fn milliseconds(ex: &Exchange<'_>, max: u64) -> Result<u64, String> {
    let raw = ex.environ().query_value("ms").unwrap_or_default();
    let ms = (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse::<u64>().ok())
        .flatten();
    match ms {
        Some(ms) if ms <= max => Ok(ms),
        _ => Err(format!(
            "ms must be a whole number of milliseconds from 0 to {max}"
        )),
    }
}
