//! WebSocket (RFC 6455), the pure parts: the opening handshake's checks and accept key, a
//! resumable frame decoder, message assembly with UTF-8 validation, and the frame encoder.
//!
//! OVERVIEW
//!
//! Nothing here does I/O, reads a clock or allocates per frame, like [`detect`](crate::detect):
//! decoders take bytes from the caller's buffer and answer [`Step::Ready`] with an event,
//! [`Step::WouldBlock`] ("need more bytes", not an error), or a typed error that knows its close
//! code; encoders append to the caller's output buffer.

pub mod base64;
pub mod sha1;
mod utf8;

pub use utf8::{Utf8Error, Utf8State, Utf8Validator};
