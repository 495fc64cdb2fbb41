//! The echo connection: the smallest useful connection coroutine, used by the demo binary, the
//! tests and the benchmark.
//!
//! It reads what the peer sends and writes it back, until the peer closes its side or an error
//! occurs. It works over any [`Stream`], so the same code runs on real sockets and in the
//! simulator.

use crate::net::Stream;
use crate::step::{Coroutine, Cx, Next, Step};

/// Size of the echo buffer, in bytes.
pub const ECHO_BUFFER: usize = 4096;

/// Read/write rounds per resume before yielding, so one chatty peer cannot hold the loop.
pub const ROUNDS_PER_RESUME: usize = 16;

/// Where an echo connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoState {
    /// Waiting for bytes from the peer.
    Reading,
    /// Writing back `buf[start..end]`.
    Writing {
        /// First byte not yet written.
        start: usize,
        /// End of the bytes read.
        end: usize,
    },
    /// The peer closed or failed; nothing more to do.
    Done,
}

/// Echoes everything a peer sends.
#[derive(Debug)]
pub struct Echo<S> {
    stream: S,
    buf: Box<[u8]>,
    state: EchoState,
}

impl<S: Stream> Echo<S> {
    /// An echo connection over `stream`.
    pub fn new(stream: S) -> Echo<S> {
        Echo {
            stream,
            buf: vec![0; ECHO_BUFFER].into_boxed_slice(),
            state: EchoState::Reading,
        }
    }

    /// Where it is.
    pub fn state(&self) -> EchoState {
        self.state
    }

    /// One read or write from `state`.
    fn step(&mut self, state: EchoState, cx: &mut Cx<'_>) -> Next<EchoState> {
        match state {
            EchoState::Reading => match self.stream.read(&mut self.buf) {
                Ok(Step::Ready(0)) | Err(_) => Next::Go(EchoState::Done),
                Ok(Step::Ready(n)) => Next::Go(EchoState::Writing { start: 0, end: n }),
                Ok(Step::WouldBlock) => {
                    cx.wait_readable(self.stream.as_raw_fd());
                    Next::Wait(state)
                }
            },
            EchoState::Writing { start, end } => match self.stream.write(&self.buf[start..end]) {
                Ok(Step::Ready(0)) | Err(_) => Next::Go(EchoState::Done),
                Ok(Step::Ready(n)) if start + n == end => Next::Go(EchoState::Reading),
                Ok(Step::Ready(n)) => Next::Go(EchoState::Writing {
                    start: start + n,
                    end,
                }),
                Ok(Step::WouldBlock) => {
                    cx.wait_writable(self.stream.as_raw_fd());
                    Next::Wait(state)
                }
            },
            EchoState::Done => Next::Go(EchoState::Done),
        }
    }
}

impl<S: Stream> Coroutine for Echo<S> {
    type Output = ();

    fn resume(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        for _ in 0..ROUNDS_PER_RESUME {
            if self.state == EchoState::Done {
                return Step::Ready(());
            }
            match self.step(self.state, cx) {
                Next::Go(next) => self.state = next,
                Next::Wait(next) => {
                    self.state = next;
                    return Step::WouldBlock;
                }
            }
        }
        if self.state == EchoState::Done {
            return Step::Ready(());
        }
        cx.yield_now();
        Step::WouldBlock
    }

    fn kind(&self) -> &'static str {
        "echo"
    }
}
