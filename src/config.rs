//! Server settings: limits, timeouts and buffer marks, each with a documented default.

use std::time::Duration;

use crate::detect::Limits;

/// Default time a client has to send a complete request head once its first byte arrived
/// (the slow-loris guard).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a keep-alive connection may sit idle between requests.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a request body may go without a new byte while the application waits for it.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a response may go without the peer taking a byte while output is pending.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time an upgraded connection (after `101 Switching Protocols`) may go without a byte in
/// either direction before it is closed.
pub const UPGRADE_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default output size, in bytes, above which the connection stops parsing pipelined requests and
/// an application's write says "would block".
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;
/// Default number of unread request-body bytes the server discards to keep a connection alive after
/// the application answered without reading them; beyond it the connection closes instead.
pub const DRAIN_LIMIT: u64 = 256 * 1024;
/// Default largest body [`Exchange::read_to_end`](crate::service::Exchange::read_to_end) collects
/// before answering 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Everything a connection needs to know about its limits, shared by all connections of a worker.
#[derive(Debug, Clone)]
pub struct Config {
    /// Request head limits (line length, head size, header count, chunk-line and trailer sizes).
    pub limits: Limits,
    /// See [`HEAD_TIMEOUT`].
    pub head_timeout: Duration,
    /// See [`KEEPALIVE_TIMEOUT`].
    pub keepalive_timeout: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body_timeout: Duration,
    /// See [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`UPGRADE_IDLE_TIMEOUT`].
    pub upgrade_idle_timeout: Duration,
    /// See [`OUTPUT_HIGH_WATER`].
    pub output_high_water: usize,
    /// See [`DRAIN_LIMIT`].
    pub drain_limit: u64,
    /// See [`MAX_BODY`].
    pub max_body: usize,
    /// Time every handler step to report the slowest (`--profile`); off by default, as it reads
    /// the clock twice per step.
    pub profile: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            head_timeout: HEAD_TIMEOUT,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            upgrade_idle_timeout: UPGRADE_IDLE_TIMEOUT,
            output_high_water: OUTPUT_HIGH_WATER,
            drain_limit: DRAIN_LIMIT,
            max_body: MAX_BODY,
            profile: false,
        }
    }
}
