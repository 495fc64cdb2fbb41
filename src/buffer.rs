//! The two per-connection buffers: bytes read and not yet consumed, and bytes to write.
//!
//! Both are allocated once per connection and reused for every request on it. Consuming advances an
//! offset instead of moving bytes; bytes are moved to the front only when room is needed at the end,
//! so a pipelined batch of requests is parsed in place.
//!
//! Both work over any [`Stream`]: a real socket, or a simulated one under the simulator.

use std::io;
use std::time::{Duration, Instant};

use executor::Step;
use executor::net::Stream;

/// Initial size of a connection's read buffer, kept by an idle connection. Big enough for a
/// typical browser head (or a pipelined batch of small ones); it grows (up to the head limit)
/// only for larger heads, and to [`BODY_READ_CAPACITY`] while a body streams in. Like nginx's
/// 1 KiB `client_header_buffer_size`, it is small so that thousands of idle keep-alive
/// connections cost little memory.
pub const READ_BUFFER_INITIAL: usize = 2 * 1024;

/// Size of a connection's read buffer while a request body streams in, so a large upload is read
/// in pieces this big rather than a head buffer's worth per system call. 64 KiB: a 64 KiB upload
/// then costs two reads and two handler resumes, not five of each with 16 KiB (about 10% less
/// server CPU per upload in the `profiles` benchmark); the buffer shrinks back to the head size
/// once the body is read, so only connections with a body in flight hold one this big.
pub const BODY_READ_CAPACITY: usize = 64 * 1024;

/// Released read buffers of the first size each worker thread keeps for its connections'
/// next reads (about 128 KiB a worker): enough for every connection a busy worker is reading at
/// once, few enough that idle connections cost their memory back.
pub const SPARE_BUFFERS: usize = 64;

/// Released body-sized read buffers ([`BODY_READ_CAPACITY`]) each worker thread keeps (512 KiB
/// a worker): the next body takes one instead of allocating and zeroing 64 KiB.
pub const SPARE_BODY_BUFFERS: usize = 8;

/// Released output buffers each worker thread keeps ([`WriteBuffer::release_when_empty`]), each
/// with the capacity its last connection grew it to (at most the idle capacity the connection
/// keeps, a few KiB).
pub const SPARE_OUTPUT_BUFFERS: usize = 64;

thread_local! {
    /// This worker's spare output buffers ([`WriteBuffer::release_when_empty`]).
    static SPARE_OUTPUT: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// This worker's spare read buffers ([`ReadBuffer::release_when_empty`]).
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// This worker's spare body buffers ([`ReadBuffer::reserve_capacity`]).
    static SPARE_BODY: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps a buffer no longer needed among this worker's spares if it has one of the two sizes
/// they hold and there is room; frees it otherwise.
fn give_back(buf: Vec<u8>) {
    let (pool, most) = match buf.len() {
        READ_BUFFER_INITIAL => (&SPARE, SPARE_BUFFERS),
        BODY_READ_CAPACITY => (&SPARE_BODY, SPARE_BODY_BUFFERS),
        _ => return,
    };
    pool.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < most {
            spare.push(buf);
        }
    });
}

/// Bytes read from a socket and not yet consumed, kept in `buf[start..end]`.
#[derive(Debug)]
pub struct ReadBuffer {
    /// Always fully initialized, so a read can target `buf[end..]` safely.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// True when the last read filled less than the room it was offered: the socket had nothing
    /// more at that moment, so another read before the next readiness event would only say EAGAIN.
    drained: bool,
    /// True once the peer's end of stream (or an error) was read: nothing more will arrive.
    closed: bool,
}

/// What one [`ReadBuffer::read_from`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// This many new bytes (at least one) were read.
    Bytes(usize),
    /// The peer closed its side: nothing more will arrive.
    Closed,
    /// The unconsumed bytes already fill the limit: the caller must take some (or answer with a
    /// limit status) before anything more can be read.
    Full,
}

impl ReadBuffer {
    /// An empty buffer of `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> ReadBuffer {
        ReadBuffer {
            buf: vec![0; capacity.max(16)],
            start: 0,
            end: 0,
            drained: false,
            closed: false,
        }
    }

    /// An empty buffer holding no memory: its first read takes one of this worker's spares (or
    /// allocates one of [`READ_BUFFER_INITIAL`] bytes). A connection starts with one, so a burst
    /// of accepted connections shares the few buffers their first reads need in turn instead of
    /// each allocating its own before it has read a byte.
    pub fn empty() -> ReadBuffer {
        ReadBuffer {
            buf: Vec::new(),
            start: 0,
            end: 0,
            drained: false,
            closed: false,
        }
    }

    /// Grows the buffer to at least `capacity` bytes, keeping its contents (moved to the front).
    /// A body-sized buffer comes from this worker's spares when there is one.
    pub fn reserve_capacity(&mut self, capacity: usize) {
        if self.buf.len() >= capacity {
            return;
        }
        let spare = match capacity {
            BODY_READ_CAPACITY => SPARE_BODY.with(|spare| spare.borrow_mut().pop()),
            _ => None,
        };
        match spare {
            Some(mut bigger) => {
                let n = self.end - self.start;
                bigger[..n].copy_from_slice(&self.buf[self.start..self.end]);
                give_back(std::mem::replace(&mut self.buf, bigger));
                self.start = 0;
                self.end = n;
            }
            None => self.buf.resize(capacity, 0),
        }
    }

    /// When the buffer is empty and larger than `above` bytes (after a large head or a body), goes
    /// back to `to` bytes, so an idle connection holds little. The gap between the two keeps a
    /// connection whose pipelined batches slightly overflow `to` from reallocating every batch.
    pub fn shrink_when_empty(&mut self, above: usize, to: usize) {
        if self.is_empty() && self.buf.len() > above {
            let small = match to {
                READ_BUFFER_INITIAL => SPARE.with(|spare| spare.borrow_mut().pop()),
                _ => None,
            };
            let old =
                std::mem::replace(&mut self.buf, small.unwrap_or_else(|| vec![0; to.max(16)]));
            give_back(old);
            self.start = 0;
            self.end = 0;
        }
    }

    /// Gives the memory back while the buffer is empty: an idle keep-alive connection then holds
    /// no read buffer at all. A buffer of the first size goes to this worker thread's few spares
    /// ([`SPARE_BUFFERS`]), which the next read takes back without allocating or zeroing, so a
    /// busy connection pays almost nothing for it; beyond those, idle buffers are freed.
    pub fn release_when_empty(&mut self) {
        if !self.is_empty() || self.buf.is_empty() {
            return;
        }
        give_back(std::mem::take(&mut self.buf));
        self.start = 0;
        self.end = 0;
    }

    /// True if the last read took everything the socket had (it returned less than the free
    /// space). Like nginx, the connection then waits for readiness instead of reading again:
    /// the speculative read would almost always fail with EAGAIN, one wasted system call per
    /// wake. Level-triggered readiness reports any bytes that arrived since.
    pub fn socket_drained(&self) -> bool {
        self.drained
    }

    /// Forgets what the last read said about the socket (on a new wake, it may have more).
    pub fn forget_drained(&mut self) {
        self.drained = false;
    }

    /// True once the peer closed its side (or the socket failed): the bytes here are all there
    /// will be.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Records that nothing more will arrive (the socket reported an error).
    pub fn mark_closed(&mut self) {
        self.closed = true;
    }

    /// The unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Number of unconsumed bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True if no bytes are waiting.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks the first `n` unconsumed bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// True if no byte can be read without first moving or growing the buffer.
    pub fn is_full(&self) -> bool {
        self.end == self.buf.len()
    }

    /// The bytes `data()[from..]`, with everything before `from` kept in place: the head of the
    /// request being served stays readable while its body streams through the rest.
    pub fn data_from(&self, from: usize) -> &[u8] {
        &self.buf[self.start + from..self.end]
    }

    /// Drops the `n` bytes at `data()[from..from + n]`, keeping the `from` bytes before them.
    /// Used for body bytes that were handed to the application: the head before them stays.
    pub fn consume_at(&mut self, from: usize, n: usize) {
        let at = self.start + from;
        debug_assert!(at + n <= self.end);
        if at + n == self.end {
            self.end = at;
        } else if n > 0 {
            self.buf.copy_within(at + n..self.end, at);
            self.end -= n;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `stream` into free space, first moving the unconsumed bytes to the front if
    /// the end of the buffer is full, and growing the buffer up to `limit` bytes if it is full.
    ///
    /// # Errors
    /// Whatever `read(2)` reports (the buffer is then marked closed).
    pub fn read_from<S: Stream>(
        &mut self,
        stream: &mut S,
        limit: usize,
    ) -> io::Result<Step<Filled>> {
        if self.buf.is_empty() {
            // Released while idle: a spare of the first size, or a new one.
            self.buf = SPARE
                .with(|spare| spare.borrow_mut().pop())
                .unwrap_or_else(|| vec![0; READ_BUFFER_INITIAL]);
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < limit {
                let grown = (self.buf.len() * 2).min(limit);
                self.buf.resize(grown, 0);
            } else {
                return Ok(Step::Ready(Filled::Full));
            }
        }
        let room = self.buf.len() - self.end;
        match stream.read(&mut self.buf[self.end..]) {
            Ok(Step::Ready(0)) => {
                self.closed = true;
                Ok(Step::Ready(Filled::Closed))
            }
            Ok(Step::Ready(n)) => {
                self.end += n;
                self.drained = n < room;
                Ok(Step::Ready(Filled::Bytes(n)))
            }
            Ok(Step::WouldBlock) => Ok(Step::WouldBlock),
            Err(e) => {
                self.closed = true;
                Err(e)
            }
        }
    }
}

/// Bytes waiting to be written to a socket, kept in `buf[start..]`, and how long they may wait.
///
/// While bytes are pending the buffer keeps a stall deadline: the moment the peer must have
/// taken at least one more byte by (the write timeout after the last progress). Any progress
/// pushes it back; an empty buffer has none.
#[derive(Debug, Default)]
pub struct WriteBuffer {
    buf: Vec<u8>,
    start: usize,
    stall_deadline: Option<Instant>,
}

impl WriteBuffer {
    /// An empty buffer with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> WriteBuffer {
        WriteBuffer {
            buf: Vec::with_capacity(capacity),
            start: 0,
            stall_deadline: None,
        }
    }

    /// When pending bytes must have moved by, if any are pending and a flush left them there.
    pub fn stall_deadline(&self) -> Option<Instant> {
        self.stall_deadline
    }

    /// True if bytes are pending and have not moved since the stall deadline passed.
    pub fn stalled(&self, now: Instant) -> bool {
        !self.is_empty() && self.stall_deadline.is_some_and(|d| now >= d)
    }

    /// Flushes as [`WriteBuffer::flush_to`] does, keeping the stall deadline: pushed back to
    /// `now + timeout` whenever bytes move (or first stay behind), dropped once empty. Returns
    /// how many bytes went out. With `more`, the writes tell the kernel that more follows at
    /// once ([`Stream::write_more`]): the bytes wait for it instead of leaving in a segment of
    /// their own.
    ///
    /// # Errors
    /// As [`WriteBuffer::flush_to`].
    pub fn flush_timed<S: Stream>(
        &mut self,
        stream: &mut S,
        now: Instant,
        timeout: Duration,
        more: bool,
    ) -> io::Result<usize> {
        let before = self.len();
        if before == 0 {
            self.stall_deadline = None;
            return Ok(0);
        }
        let flushed = self.flush_with(stream, more)?;
        let written = before - self.len();
        if flushed.is_ready() {
            self.stall_deadline = None;
        } else if written > 0 || self.stall_deadline.is_none() {
            self.stall_deadline = Some(now + timeout);
        }
        Ok(written)
    }

    /// Number of bytes waiting.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True if nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vector to append to; response encoders write straight into it. A buffer released
    /// while idle takes one of this worker's spares first, so the first response after the idle
    /// time does not grow a vector from nothing.
    pub fn vec(&mut self) -> &mut Vec<u8> {
        if self.buf.capacity() == 0
            && let Ok(Some(spare)) = SPARE_OUTPUT.try_with(|spare| spare.borrow_mut().pop())
        {
            self.buf = spare;
            self.start = 0;
        }
        &mut self.buf
    }

    /// Gives the memory back while nothing waits to be written: an idle keep-alive connection
    /// then holds no output buffer. A buffer of no more than `most` bytes' capacity goes to this
    /// worker's spares ([`SPARE_OUTPUT_BUFFERS`]), which the next [`WriteBuffer::vec`] on any of
    /// its connections takes back; a larger one is freed.
    pub fn release_when_empty(&mut self, most: usize) {
        if !self.is_empty() || self.buf.capacity() == 0 {
            return;
        }
        let mut buf = std::mem::take(&mut self.buf);
        self.start = 0;
        if buf.capacity() <= most {
            buf.clear();
            let _ = SPARE_OUTPUT.try_with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < SPARE_OUTPUT_BUFFERS {
                    spare.push(buf);
                }
            });
        }
    }

    /// The bytes waiting to be written.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Writes as much as the socket takes now, in one `write(2)` per call of the loop, until the
    /// buffer is empty or the socket would block.
    ///
    /// Returns `Ready(())` once everything is written, `WouldBlock` if bytes remain.
    ///
    /// # Errors
    /// Whatever `write(2)` reports (a reset peer, for one).
    pub fn flush_to<S: Stream>(&mut self, stream: &mut S) -> io::Result<Step<()>> {
        self.flush_with(stream, false)
    }

    /// [`WriteBuffer::flush_to`], with [`Stream::write_more`] when `more`.
    fn flush_with<S: Stream>(&mut self, stream: &mut S, more: bool) -> io::Result<Step<()>> {
        while self.start < self.buf.len() {
            let pending = &self.buf[self.start..];
            let sent = if more {
                stream.write_more(pending)
            } else {
                stream.write(pending)
            };
            match sent? {
                Step::Ready(0) => return Err(io::ErrorKind::WriteZero.into()),
                Step::Ready(n) => self.start += n,
                Step::WouldBlock => return Ok(Step::WouldBlock),
            }
        }
        self.buf.clear();
        self.start = 0;
        Ok(Step::Ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_buffer_is_kept_for_the_next_body_and_the_head_buffer_for_the_next_head() {
        let mut buf = ReadBuffer::with_capacity(READ_BUFFER_INITIAL);
        buf.buf[..3].copy_from_slice(b"abc");
        buf.end = 3;
        buf.consume(1);
        buf.reserve_capacity(BODY_READ_CAPACITY);
        assert_eq!(buf.data(), b"bc");
        let body_alloc = buf.buf.as_ptr();
        buf.consume(2);
        buf.shrink_when_empty(2 * READ_BUFFER_INITIAL, READ_BUFFER_INITIAL);
        assert_eq!(buf.buf.len(), READ_BUFFER_INITIAL);
        // The next body takes the same 64 KiB back instead of allocating and zeroing one.
        buf.buf[..2].copy_from_slice(b"xy");
        buf.end = 2;
        buf.reserve_capacity(BODY_READ_CAPACITY);
        assert_eq!(buf.buf.as_ptr(), body_alloc);
        assert_eq!(buf.data(), b"xy");
    }

    #[test]
    fn a_body_buffer_grows_keeping_its_bytes_and_shrinks_only_when_empty() {
        let mut buf = ReadBuffer::with_capacity(READ_BUFFER_INITIAL);
        buf.buf[..5].copy_from_slice(b"hello");
        buf.end = 5;
        buf.consume(1);
        buf.reserve_capacity(BODY_READ_CAPACITY);
        assert_eq!(buf.buf.len(), BODY_READ_CAPACITY);
        assert_eq!(buf.data(), b"ello");
        buf.shrink_when_empty(READ_BUFFER_INITIAL, READ_BUFFER_INITIAL);
        assert_eq!(buf.buf.len(), BODY_READ_CAPACITY, "not while bytes wait");
        buf.consume(4);
        buf.shrink_when_empty(BODY_READ_CAPACITY, READ_BUFFER_INITIAL);
        assert_eq!(buf.buf.len(), BODY_READ_CAPACITY, "not above the threshold");
        buf.shrink_when_empty(2 * READ_BUFFER_INITIAL, READ_BUFFER_INITIAL);
        assert_eq!(buf.buf.len(), READ_BUFFER_INITIAL);
        assert!(buf.is_empty());
    }
}
