//! The application takes over the connection: after a `101 Switching Protocols` (RFC 9110
//! §15.2.2, §7.8) the bytes on the connection are no longer HTTP, and a [`Tunnel`] — a step
//! machine like a handler — reads and writes them raw through [`Upgraded`].
//!
//! A handler switches with [`Exchange::switch_protocols`](super::Exchange::switch_protocols),
//! which checks that the client offered the protocol, writes the `101` and hands the connection
//! the tunnel. The connection resumes the tunnel as it resumed the handler: `WouldBlock` after
//! registering in `cx` what wakes it (the client's bytes, room to write, a timer, its own fds),
//! `Ready(())` when the stream is over, after which the connection sends what is left and
//! closes. Bytes the client sent after the head (a WebSocket client may send its first frame at
//! once) are the tunnel's first input.
//!
//! The connection keeps two rules for it: an idle timeout (`--upgrade-idle-timeout`: no byte in
//! either direction for that long closes the connection), and the write timeout (output that does
//! not move). During a graceful shutdown [`Upgraded::shutting_down`] turns true and the tunnel
//! is resumed, so it can say goodbye in its own protocol (a WebSocket close 1001); the worker's
//! grace period bounds how long that may take.

use std::os::fd::RawFd;
use std::time::Instant;

use executor::{Cx, Step};

use crate::buffer::{ReadBuffer, WriteBuffer};

/// A step machine that owns an upgraded connection's byte stream.
pub trait Tunnel {
    /// Advances the tunnel: `Ready(())` when the stream is over (the connection then sends what
    /// is left and closes), `WouldBlock` after registering its waits in `cx` (the [`Upgraded`]
    /// calls that answer `WouldBlock` register theirs).
    fn resume(&mut self, io: &mut Upgraded<'_>, cx: &mut Cx<'_>) -> Step<()>;

    /// A short name for this kind of tunnel, for the executor's per-kind counters.
    fn kind(&self) -> &'static str {
        "upgraded"
    }
}

/// The raw connection a [`Tunnel`] reads and writes: the bytes received and not consumed yet,
/// and the output the connection sends.
pub struct Upgraded<'a> {
    /// The client's socket, for the waits registered here.
    pub(crate) fd: RawFd,
    pub(crate) input: &'a mut ReadBuffer,
    pub(crate) output: &'a mut WriteBuffer,
    /// Output size above which writes say `WouldBlock` (`--output-high-water`).
    pub(crate) high_water: usize,
    pub(crate) shutting_down: bool,
    /// The connection closes after this resume (the upgrade idle timeout passed).
    pub(crate) ending: bool,
    pub(crate) now: Instant,
}

impl Upgraded<'_> {
    /// The bytes received and not consumed yet (possibly none).
    pub fn input(&self) -> &[u8] {
        self.input.data()
    }

    /// Drops the first `n` bytes of [`Upgraded::input`]: the tunnel has used them. A tunnel
    /// consumes what it decodes, and a decoder that keeps partial state of its own (as the
    /// [`ws`](crate::ws) decoders do) consumes everything it was given.
    pub fn consume(&mut self, n: usize) {
        self.input.consume(n.min(self.input.len()));
    }

    /// True once the client has closed its side: no bytes will follow [`Upgraded::input`].
    pub fn peer_closed(&self) -> bool {
        self.input.is_closed()
    }

    /// `Ready` when there is input to look at or the client has closed; otherwise registers
    /// the socket (readable) in `cx` and answers `WouldBlock`. Call it once the input is used
    /// up.
    pub fn wait_input(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if !self.input.is_empty() || self.input.is_closed() {
            return Step::Ready(());
        }
        cx.wait_readable(self.fd);
        Step::WouldBlock
    }

    /// The input and the output at once, for a codec that copies from one to the other (an
    /// echo unmasks a WebSocket payload straight into the output). Append no more than
    /// [`Upgraded::room`] allows, or the output grows past its high-water mark.
    pub fn split(&mut self) -> (&[u8], &mut Vec<u8>) {
        (self.input.data(), self.output.vec())
    }

    /// The output, to append to (see [`Upgraded::room`]).
    pub fn output(&mut self) -> &mut Vec<u8> {
        self.output.vec()
    }

    /// Bytes that may be appended to the output before it reaches its high-water mark.
    pub fn room(&self) -> usize {
        self.high_water.saturating_sub(self.output.len())
    }

    /// Bytes written and not yet taken by the client.
    pub fn output_pending(&self) -> usize {
        self.output.len()
    }

    /// `Ready` if the output has room; otherwise registers the socket (writable) and the write
    /// timeout's deadline in `cx` and answers `WouldBlock`: backpressure, as
    /// [`Exchange::write`](super::Exchange::write) has it.
    pub fn wait_room(&mut self, cx: &mut Cx<'_>) -> Step<()> {
        if self.room() > 0 {
            return Step::Ready(());
        }
        cx.wait_writable(self.fd);
        if let Some(deadline) = self.output.stall_deadline() {
            cx.wait_until(deadline);
        }
        Step::WouldBlock
    }

    /// Appends as much of `data` as there is room for and returns how much; `WouldBlock` (with
    /// the wait registered) when there is no room at all.
    pub fn write(&mut self, data: &[u8], cx: &mut Cx<'_>) -> Step<usize> {
        if data.is_empty() {
            return Step::Ready(0);
        }
        executor::ready!(self.wait_room(cx));
        let n = data.len().min(self.room());
        self.output.vec().extend_from_slice(&data[..n]);
        Step::Ready(n)
    }

    /// True once the worker's graceful shutdown has begun: end the stream soon, in the
    /// protocol's own way.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// True on the last resume before the connection closes because nothing moved for the
    /// upgrade idle timeout: what the tunnel writes now (a goodbye in its protocol) is sent,
    /// then the connection closes whatever the tunnel answers.
    pub fn ending(&self) -> bool {
        self.ending
    }

    /// The executor's clock at this resume.
    pub fn now(&self) -> Instant {
        self.now
    }
}
