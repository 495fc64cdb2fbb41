//! The request head: finding where it ends, incrementally, then parsing it into a reusable
//! [`RequestHead`] of offsets into the read buffer.
//!
//! # Two paths, one answer
//!
//! [`HeadDetector::detect`] is called with the connection's read buffer each time more bytes
//! arrive. There are two ways through it:
//!
//! - **Whole head, first look** (the common case: a head arrives in one read). One call of
//!   httparse's `parse_request_with_uninit_headers` finds the end of the head and tokenizes the
//!   request line and fields, with no header array to initialize and no scan of our own; then we
//!   check what httparse does not (every line ends in CRLF, the limits, the framing rules). This
//!   path only ever *accepts*: anything it does not like, including a head that is not complete
//!   yet, goes to the line scan, which gives the verdict.
//! - **Line scan** (a head split across reads, or anything the fast path declined). The detector
//!   remembers how far it has looked and which line it is in, so a head that arrives one byte at a
//!   time is scanned once in total (plus whatever the first read held, which the fast path looked
//!   at once). Like hyper's `is_complete_fast` the search resumes where it stopped, but it looks
//!   for each LF with `memchr` rather than for `CRLFCRLF` with `memmem`, because it wants every
//!   line end: that enforces the request-line limit before the line is complete, rejects a bare
//!   LF the moment it arrives, parses the request line (and refuses a bad version) before the
//!   fields come in, and counts fields before parsing them. It needs no look-back: the only
//!   context a new LF needs is the byte before it, already in the buffer.
//!
//! Both paths give the same answer for every input: the `head` fuzz target compares a one-shot
//! detect (fast path) with a byte-by-byte one (line scan), and the tests feed every case at every
//! split point. The fast path exists for speed: it brings a typical browser head to about 1.3
//! times raw httparse's time (see `asycamore-bench parse`), where the line scan alone was twice.
//!
//! # Line endings
//!
//! RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator. We do not: every line of
//! the head must end in CRLF, and a bare LF is a 400 ([`HeadError::BareLf`]). Accepting it would
//! make the end of the head ambiguous between us and any proxy in front of us (`\n\n`, `\r\n\n`
//! and `\n\r\n` end a head for some parsers and not for others), which is one of the ways requests
//! are smuggled. Every client we serve sends CRLF.
//!
//! # Parsing
//!
//! On the line scan, the request line is parsed here (method, target, and the version, which
//! httparse would reject for `HTTP/1.2`..`HTTP/1.9` where RFC 9110 §2.5 says to serve them as
//! 1.1); the field section is parsed with [`httparse::parse_headers`]. httparse's defaults already
//! reject obs-fold, whitespace before the colon, and NUL and other controls in names and values
//! (`ParserConfig` leniencies are all off by default for requests). The header array is on the
//! stack, sized by the number of field lines the scan counted; only a `max_headers` raised above
//! 128 can make a head with that many fields use the heap.
//!
//! # Request targets and Host
//!
//! Both paths check the target the same way (RFC 9112 §3.2): its bytes are VCHAR (no raw UTF-8,
//! no controls), it is in one of the four forms ([`TargetForm`]), and the method may use that form
//! — `*` only with OPTIONS, `host:port` with CONNECT and only there. A `Host` value must be a
//! `uri-host [ ":" port ]` (RFC 9110 §7.2), checked as its field is recorded. Whether the Host
//! agrees with an absolute-form's authority is not checked: RFC 9112 §3.2.2 has the server use
//! the target's and ignore the Host, which is the application's business.

use std::ops::Range;

use executor::Step;

use super::Limits;
use super::error::HeadError;
use super::framing::{BodyFraming, FieldFacts};
use super::span::Span;
use super::syntax::{is_target, is_token, visible_prefix_len};
use super::uri::{TargetForm, target_form};
use super::version::Version;

/// A parsed request head: offsets into the buffer it was parsed from, so a connection can keep it
/// across resumes next to that buffer. Reused from one request to the next: the field list keeps
/// its allocation.
///
/// Every accessor takes that buffer (`buf`, the same slice given to [`HeadDetector::detect`], or
/// any slice that begins with the same head). Given another buffer, the answers are wrong but
/// nothing panics.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    method: Span,
    target: Span,
    form: TargetForm,
    version: Version,
    fields: Vec<(Span, Span)>,
    framing: BodyFraming,
    facts: FieldFacts,
    len: usize,
}

impl RequestHead {
    /// An empty head, to be filled by [`HeadDetector::detect`].
    pub fn new() -> RequestHead {
        RequestHead::default()
    }

    /// The method, e.g. `"GET"` (a token, so always ASCII).
    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b str {
        // The usual methods as constants: a compare instead of a UTF-8 check, once per request
        // for the router and again for the environ and the log.
        match self.method.of(buf) {
            b"GET" => "GET",
            b"HEAD" => "HEAD",
            b"POST" => "POST",
            other => std::str::from_utf8(other).unwrap_or_default(),
        }
    }

    /// The method's bytes, for comparisons that need no `&str`.
    pub fn method_bytes<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.method.of(buf)
    }

    /// The request target as sent: not decoded, possibly raw UTF-8 or other bytes above 0x7F.
    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.target.of(buf)
    }

    /// The form of the request target (RFC 9112 §3.2), already checked against the method:
    /// [`TargetForm::Asterisk`] only with OPTIONS (a server-wide `OPTIONS *`),
    /// [`TargetForm::Authority`] with CONNECT and only there, [`TargetForm::Origin`] or
    /// [`TargetForm::Absolute`] otherwise.
    pub fn target_form(&self) -> TargetForm {
        self.form
    }

    /// The version the request will be served as.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The header fields in order, as `(name, value)`; the value is trimmed of surrounding
    /// whitespace. Names are tokens, so always ASCII.
    pub fn headers<'s, 'b>(
        &'s self,
        buf: &'b [u8],
    ) -> impl Iterator<Item = (&'b str, &'b [u8])> + 's
    where
        'b: 's,
    {
        self.fields.iter().map(move |&(name, value)| {
            (
                std::str::from_utf8(name.of(buf)).unwrap_or_default(),
                value.of(buf),
            )
        })
    }

    /// The value of the first field called `name` (compared case-insensitively).
    pub fn header<'b>(&self, buf: &'b [u8], name: &str) -> Option<&'b [u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.of(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, value)| value.of(buf))
    }

    /// How many header fields the head has.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// The byte ranges of each field's name and value in the buffer.
    pub fn header_ranges(
        &self,
    ) -> impl ExactSizeIterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.fields.iter().map(|&(n, v)| (n.range(), v.range()))
    }

    /// The `Host` value, if the request has one (always, in HTTP/1.1).
    pub fn host<'b>(&self, buf: &'b [u8]) -> Option<&'b [u8]> {
        self.facts.host.map(|s| s.of(buf))
    }

    /// How the body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// True if the connection may stay open after this request (RFC 9112 §9.3): in HTTP/1.1 unless
    /// the client sent `Connection: close`; in HTTP/1.0 only if it sent `Connection: keep-alive`
    /// (and not `close`).
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.facts.close,
            Version::Http10 => self.facts.keep_alive && !self.facts.close,
        }
    }

    /// True if the client sent the `close` connection option.
    pub fn connection_close(&self) -> bool {
        self.facts.close
    }

    /// True if the client sent the `keep-alive` connection option.
    pub fn connection_keep_alive(&self) -> bool {
        self.facts.keep_alive
    }

    /// True if an HTTP/1.1 client sent `Expect: 100-continue`, body or not (RFC 9110 §7.8 wants
    /// the 100 before a 101 even without one).
    pub fn sent_expect_continue(&self) -> bool {
        self.facts.expect_continue && self.version == Version::Http11
    }

    /// True if the client waits for `100 Continue` before sending the body. RFC 9110 §10.1.1: an
    /// HTTP/1.0 client's expectation is ignored, and so is one on a request with no body.
    pub fn expects_continue(&self) -> bool {
        self.facts.expect_continue
            && self.version == Version::Http11
            && self.framing != BodyFraming::None
    }

    /// The length of the head in bytes, including leading empty lines and the final empty line:
    /// the `n` of the `Ready(n)` that filled it.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing has been parsed into this head yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the previous head, keeping the field list's allocation, and starts this one
    /// with its parsed request line.
    fn begin(&mut self, line: RequestLine) {
        self.fields.clear();
        self.facts = FieldFacts::default();
        self.framing = BodyFraming::None;
        self.len = 0;
        self.method = line.method;
        self.target = line.target;
        self.form = line.form;
        self.version = line.version;
    }
}

/// Where the head scan is; committed only when a line is complete, so `WouldBlock` keeps all
/// progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadState {
    /// Skipping empty lines before the request line (RFC 9112 §2.2); the next line starts at `at`.
    Leading {
        /// Where the next line begins.
        at: usize,
    },
    /// Inside the request line, which began at `start`.
    RequestLine {
        /// Where the request line begins.
        start: usize,
    },
    /// Inside the field section; the current line began at `line`, after `fields` complete fields.
    Fields {
        /// Where the first field line begins.
        first: usize,
        /// Where the current line begins.
        line: usize,
        /// How many field lines have ended so far.
        fields: usize,
    },
}

/// Finds the end of a request head and parses it; a coroutine over bytes that does no I/O.
///
/// ```
/// use asycamore::detect::{HeadDetector, Limits, RequestHead, BodyFraming};
/// use asycamore::executor::Step;
///
/// let mut detector = HeadDetector::new(Limits::default());
/// let mut head = RequestHead::new();
/// let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b";
/// assert_eq!(detector.detect(&buf[..10], &mut head), Ok((0, Step::WouldBlock)));
/// assert_eq!(detector.detect(buf, &mut head), Ok((28, Step::Ready(()))));
/// assert_eq!(head.target(buf), b"/a");
/// assert_eq!(head.framing(), BodyFraming::None);
/// ```
#[derive(Debug, Clone)]
pub struct HeadDetector {
    limits: Limits,
    state: HeadState,
    /// Everything before this offset has been looked at.
    scanned: usize,
    /// The parsed request line, once it is complete.
    line: RequestLine,
}

/// A parsed request line (RFC 9112 §3): where its method and target lie, the target's form and
/// the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestLine {
    method: Span,
    target: Span,
    form: TargetForm,
    version: Version,
}

impl HeadDetector {
    /// A detector waiting for the first byte of a head.
    pub fn new(limits: Limits) -> HeadDetector {
        HeadDetector {
            limits,
            state: HeadState::Leading { at: 0 },
            scanned: 0,
            line: RequestLine {
                method: Span::default(),
                target: Span::default(),
                form: TargetForm::Origin,
                version: Version::Http11,
            },
        }
    }

    /// The limits this detector enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Enforces `limits` from the next look on: a detector kept for reuse may serve connections
    /// of servers with other limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Forgets any partial head, to start on a new buffer. [`HeadDetector::detect`] does this
    /// itself after `Ready`.
    pub fn reset(&mut self) {
        self.state = HeadState::Leading { at: 0 };
        self.scanned = 0;
    }

    /// Looks for a complete head at the start of `buf`.
    ///
    /// `buf` must begin at the same byte on every call for one head, each call passing at least
    /// what the last one did (the connection appends to its buffer and passes all of it). Returns
    /// the detectors' one shape (see [the module docs](super)): `(n, Ready(()))` when `buf[..n]`
    /// is one complete head, leading empty lines and the final empty line included, now parsed
    /// into `head` (whose offsets point into those `n` bytes, so the caller keeps them while it
    /// uses the head); the detector is then ready for the next head, which the caller passes
    /// starting at `buf[n..]` once it has consumed the body. `(0, WouldBlock)` when more bytes
    /// are needed: a head is parsed whole, so nothing is consumed before it is all there (the
    /// detector remembers how far it scanned, and does not scan those bytes again).
    ///
    /// # Errors
    /// A [`HeadError`] as soon as the bytes seen are enough to know the head is bad or too large;
    /// the connection should answer with [`HeadError::status`] and close.
    pub fn detect(
        &mut self,
        buf: &[u8],
        head: &mut RequestHead,
    ) -> Result<(usize, Step<()>), HeadError> {
        if buf.len() < self.scanned {
            // The caller broke the contract (the buffer shrank); start over rather than index out of
            // bounds.
            self.reset();
        }
        let result = match self.scanned {
            // Nothing looked at yet: most heads arrive whole, so try that first.
            0 => match self.detect_whole(buf, head) {
                Some(result) => result,
                None => self.scan(buf, head),
            },
            _ => self.scan(buf, head),
        };
        if !matches!(result, Ok(Step::WouldBlock)) {
            self.reset();
        }
        result.map(|step| match step {
            Step::Ready(n) => (n, Step::Ready(())),
            Step::WouldBlock => (0, Step::WouldBlock),
        })
    }

    /// The fast path, for a head that is all in `buf` on the first look: the request line through
    /// [`usual_request_line`] (which answers only for the shape it parses as [`request_line`]
    /// would), then one httparse call over the field section finds the head's end and parses every
    /// field, with no line-by-line scan of our own.
    ///
    /// It answers only when the head is well-formed in every way the line scan checks (limits,
    /// CRLF line ends, the request line); for anything else it answers `None` and the line scan
    /// decides, so both paths give the same answer for every input. The fuzz target `head` checks
    /// exactly that, comparing a one-shot detect (this path) with a byte-by-byte one (the line
    /// scan). The request line is ours rather than httparse's: httparse would also check the
    /// target as UTF-8, which costs more than everything we check it for.
    fn detect_whole(
        &self,
        buf: &[u8],
        head: &mut RequestHead,
    ) -> Option<Result<Step<usize>, HeadError>> {
        let mut start = 0;
        while buf[start..].starts_with(b"\r\n") {
            start += 2;
        }
        // Give the fields no more than a head may be, so an oversized head is `Partial` below
        // and the line scan reports it.
        let window = &buf[..buf.len().min(self.limits.max_head)];
        let (line, first) = usual_request_line(window, start)?;
        if first - 2 - start > self.limits.max_request_line {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; WHOLE_HEAD_FIELDS];
        // Too many fields, and every error, go to the line scan.
        let Ok(httparse::Status::Complete((len, fields))) =
            httparse::parse_headers(&window[first..], &mut headers)
        else {
            return None;
        };
        let n = first + len;
        if fields.len() > self.limits.max_headers || !buf[..n].ends_with(b"\r\n\r\n") {
            return None;
        }
        // Every field line must end in CRLF, which httparse does not insist on (it takes a bare
        // LF too): each ends where the next begins, just after an LF, and the last one in the
        // CRLFCRLF checked above. A plain loop: an iterator chain here cost more than the check.
        let base = buf.as_ptr() as usize;
        let mut bare_lf = false;
        for h in fields.iter().skip(1) {
            let next = h.name.as_ptr() as usize - base;
            bare_lf |= buf.get(next.wrapping_sub(2)) != Some(&b'\r');
        }
        if bare_lf {
            return None;
        }
        head.begin(line);
        let facts = record_fields(buf, fields, head).and_then(|()| {
            head.facts
                .finish(head.version, self.limits.max_request_body)
        });
        Some(facts.map(|framing| {
            head.framing = framing;
            head.len = n;
            Step::Ready(n)
        }))
    }

    /// The state loop: one small step per line.
    fn scan(&mut self, buf: &[u8], head: &mut RequestHead) -> Result<Step<usize>, HeadError> {
        loop {
            match self.state {
                HeadState::Leading { at } => {
                    // RFC 9112 §2.2: ignore empty lines before the request line. They count toward
                    // the head size, so a stream of CRLFs is bounded too.
                    if at > self.limits.max_head {
                        return Err(HeadError::HeadTooLarge);
                    }
                    match buf.get(at..at + 2) {
                        Some(b"\r\n") => {
                            self.state = HeadState::Leading { at: at + 2 };
                            self.scanned = at + 2;
                        }
                        Some([b'\n', _]) => return Err(HeadError::BareLf),
                        Some([b'\r', _]) => return Err(HeadError::MalformedRequestLine),
                        Some(_) => self.state = HeadState::RequestLine { start: at },
                        None => {
                            return match buf.get(at) {
                                None | Some(b'\r') => Ok(Step::WouldBlock),
                                Some(b'\n') => Err(HeadError::BareLf),
                                Some(_) => {
                                    self.state = HeadState::RequestLine { start: at };
                                    continue;
                                }
                            };
                        }
                    }
                }
                HeadState::RequestLine { start } => {
                    let from = self.scanned.max(start);
                    let Some(lf) = memchr::memchr(b'\n', &buf[from..]).map(|i| from + i) else {
                        self.scanned = buf.len();
                        self.check_partial(buf, Some(start), buf.len())?;
                        return Ok(Step::WouldBlock);
                    };
                    // The bytes before the LF must pass the checks they would have failed had
                    // they arrived without it, so the answer does not depend on how reads split.
                    self.check_partial(buf, Some(start), lf)?;
                    // `lf > start`: the line starts with a byte other than CR or LF.
                    if buf[lf - 1] != b'\r' {
                        return Err(HeadError::BareLf);
                    }
                    if lf + 1 > self.limits.max_head {
                        return Err(HeadError::HeadTooLarge);
                    }
                    // `check_partial` saw at most `max_request_line` bytes before the CR.
                    self.line = request_line(buf, start, lf - 1)?;
                    self.scanned = lf + 1;
                    self.state = HeadState::Fields {
                        first: lf + 1,
                        line: lf + 1,
                        fields: 0,
                    };
                }
                HeadState::Fields {
                    first,
                    line,
                    fields,
                } => {
                    let from = self.scanned;
                    let Some(lf) = memchr::memchr(b'\n', &buf[from..]).map(|i| from + i) else {
                        self.scanned = buf.len();
                        self.check_partial(buf, None, buf.len())?;
                        return Ok(Step::WouldBlock);
                    };
                    self.check_partial(buf, None, lf)?;
                    // `lf >= 1`: the request line ended before it.
                    if buf[lf - 1] != b'\r' || lf == line {
                        return Err(HeadError::BareLf);
                    }
                    let n = lf + 1;
                    if n > self.limits.max_head {
                        return Err(HeadError::HeadTooLarge);
                    }
                    self.scanned = n;
                    if lf - 1 == line {
                        self.finish(buf, first, fields, n, head)?;
                        return Ok(Step::Ready(n));
                    }
                    if fields == self.limits.max_headers {
                        return Err(HeadError::TooManyHeaders);
                    }
                    self.state = HeadState::Fields {
                        first,
                        line: n,
                        fields: fields + 1,
                    };
                }
            }
        }
    }

    /// The limit a head that so far ends at `end`, with no LF in its current line, has exceeded:
    /// the request line's (if `request_line` is where an unfinished request line starts) or the
    /// head's. If both, the one a byte-by-byte feed would have hit first, so every way of
    /// splitting the input gives the same error.
    fn check_partial(
        &self,
        buf: &[u8],
        request_line: Option<usize>,
        end: usize,
    ) -> Result<(), HeadError> {
        // Head: exceeded once `max_head + 1` bytes are here.
        let head_at = self.limits.max_head.saturating_add(1);
        // Request line: exceeded once more than `max_request_line` bytes are here that are not
        // the CR of its CRLF, i.e. one byte later if the byte just past the limit is a CR.
        let line_at = request_line.map(|start| {
            let past = start.saturating_add(self.limits.max_request_line);
            past.saturating_add(1)
                .saturating_add(usize::from(buf.get(past) == Some(&b'\r')))
        });
        match line_at {
            Some(at) if at <= end && at <= head_at => Err(HeadError::RequestLineTooLong),
            _ if head_at <= end => Err(HeadError::HeadTooLarge),
            _ => Ok(()),
        }
    }

    /// Parses the field section `buf[first..n]` (its `fields` lines and the final empty line)
    /// into `head`, and decides the framing.
    fn finish(
        &self,
        buf: &[u8],
        first: usize,
        fields: usize,
        n: usize,
        head: &mut RequestHead,
    ) -> Result<(), HeadError> {
        head.begin(self.line);
        let block = &buf[first..n];
        // httparse wants an initialized array as long as the number of fields; the scan counted
        // them, so use the smallest stack array that fits (initializing 100 unused entries would
        // cost more than parsing a typical head). Only a limit raised past 128 can reach the heap.
        match fields {
            0..=16 => parse_fields::<16>(buf, block, fields, head)?,
            17..=128 => parse_fields::<128>(buf, block, fields, head)?,
            _ => {
                let mut headers = vec![httparse::EMPTY_HEADER; fields];
                parse_fields_into(buf, block, &mut headers, head)?;
            }
        }
        head.framing = head
            .facts
            .finish(head.version, self.limits.max_request_body)?;
        head.len = n;
        Ok(())
    }
}

/// Parses `buf[start..end]`, the request line without its CRLF (RFC 9112 §3):
/// `method SP request-target SP HTTP-version`, single spaces. Both ways of finding a head call it,
/// so they agree on every request line.
#[inline]
fn request_line(buf: &[u8], start: usize, end: usize) -> Result<RequestLine, HeadError> {
    let line = &buf[start..end];
    let first_sp = memchr::memchr(b' ', line).ok_or(HeadError::MalformedRequestLine)?;
    let last_sp = memchr::memrchr(b' ', line).unwrap_or(first_sp);
    let method = &line[..first_sp];
    if !is_token(method) {
        return Err(HeadError::InvalidMethod);
    }
    if first_sp == last_sp {
        // `GET /path`: an HTTP/0.9 simple request, well-formed but a version we do not speak.
        // Without a valid target it is no request at all: `GET HTTP/1.1` has lost its target,
        // and the version was never the problem.
        return Err(match check_target(method, &line[first_sp + 1..]) {
            Ok(_) => HeadError::VersionNotSupported,
            Err(_) => HeadError::MalformedRequestLine,
        });
    }
    // The target's bytes, then the version, then the target's form: a version we do not speak
    // is a 505 whatever its target says (`PRI * HTTP/2.0`, the HTTP/2 preface, is not an
    // asterisk-form without OPTIONS but a request for HTTP/2).
    let target = &line[first_sp + 1..last_sp];
    if !is_target(target) {
        // Empty (two spaces in a row), or with a space or a forbidden byte inside.
        return Err(HeadError::InvalidTarget);
    }
    let version = parse_version(&line[last_sp + 1..])?;
    let form = check_target_form(method, target)?;
    Ok(RequestLine {
        method: Span {
            start,
            end: start + first_sp,
        },
        target: Span {
            start: start + first_sp + 1,
            end: start + last_sp,
        },
        form,
        version,
    })
}

/// The request line starting at `buf[start]` if it has the usual shape, `token SP target SP
/// HTTP/1.d CRLF` with a target of visible ASCII, parsed as [`request_line`] would parse it, with
/// where the line after it begins; `None` for any other shape (or a line not all in `buf`), which
/// the line scan then parses. One pass: the method up to its SP, the target a word at a time up to
/// the first byte that may not be in one, and the fixed-size rest; no search for the line's end.
#[inline]
fn usual_request_line(buf: &[u8], start: usize) -> Option<(RequestLine, usize)> {
    /// Longer methods (there are few) take the line scan.
    const USUAL_METHOD: usize = 16;
    let rest = buf.get(start..)?;
    // Most requests are GETs: four bytes compared as one word answer for the method.
    let method_len = if rest.get(..4) == Some(b"GET ") {
        3
    } else {
        let len = rest.iter().take(USUAL_METHOD).position(|&b| b == b' ')?;
        if !is_token(&rest[..len]) {
            return None;
        }
        len
    };
    let method = &rest[..method_len];
    let target_at = method_len + 1;
    let target_len = visible_prefix_len(rest.get(target_at..)?);
    let version_at = target_at + target_len;
    let target = &rest[target_at..version_at];
    let tail: [u8; 11] = rest.get(version_at..version_at + 11)?.try_into().ok()?;
    let [b' ', version @ .., b'\r', b'\n'] = tail else {
        return None;
    };
    if target.is_empty() {
        return None;
    }
    let version = parse_version(&version).ok()?;
    let form = check_target_form(method, target).ok()?;
    let line = RequestLine {
        method: Span {
            start,
            end: start + method_len,
        },
        target: Span {
            start: start + target_at,
            end: start + version_at,
        },
        form,
        version,
    };
    Some((line, start + version_at + 11))
}

/// Checks a request target and returns its form (RFC 9112 §3.2): its bytes, then
/// [`check_target_form`].
#[inline]
fn check_target(method: &[u8], target: &[u8]) -> Result<TargetForm, HeadError> {
    if !is_target(target) {
        return Err(HeadError::InvalidTarget);
    }
    check_target_form(method, target)
}

/// The form of `target`, whose bytes have been checked, if it is in one of the four and the
/// method may use it (RFC 9112 §3.2). Methods are case-sensitive (RFC 9110 §9.1), so `connect` is
/// not CONNECT.
#[inline(always)]
fn check_target_form(method: &[u8], target: &[u8]) -> Result<TargetForm, HeadError> {
    let connect = method == b"CONNECT";
    match target_form(target) {
        // The common case first: one byte compare, one length compare.
        Some(TargetForm::Origin) if !connect => Ok(TargetForm::Origin),
        // RFC 9112 §3.2.3: CONNECT uses the authority-form and nothing else uses it.
        Some(TargetForm::Authority) if connect => Ok(TargetForm::Authority),
        _ if connect => Err(HeadError::ConnectWithoutAuthorityForm),
        Some(TargetForm::Authority) => Err(HeadError::AuthorityFormWithoutConnect),
        // RFC 9112 §3.2.4: the asterisk-form is only for a server-wide OPTIONS.
        Some(TargetForm::Asterisk) if method != b"OPTIONS" => {
            Err(HeadError::AsteriskFormWithoutOptions)
        }
        Some(form) => Ok(form),
        None => Err(HeadError::UnrecognizedTarget),
    }
}

/// Fields the whole-head fast path has room for; a head with more goes to the line scan.
const WHOLE_HEAD_FIELDS: usize = 32;

/// Parses the field block with a stack array of `N` headers, of which `fields` are used.
#[inline]
fn parse_fields<const N: usize>(
    buf: &[u8],
    block: &[u8],
    fields: usize,
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; N];
    parse_fields_into(buf, block, &mut headers[..fields], head)
}

/// Runs httparse over the field block and records each field's ranges and meaning.
#[inline]
fn parse_fields_into<'b>(
    buf: &'b [u8],
    block: &'b [u8],
    headers: &mut [httparse::Header<'b>],
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    let parsed = match httparse::parse_headers(block, headers) {
        Ok(httparse::Status::Complete((_, parsed))) => parsed,
        // The scan found the empty line, so httparse has everything; a partial answer or too many
        // headers would mean the two disagree about line ends.
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::InvalidHeaderName);
        }
        Err(httparse::Error::HeaderValue) => return Err(HeadError::InvalidHeaderValue),
        Err(_) => return Err(HeadError::InvalidHeaderName),
    };
    record_fields(buf, parsed, head)
}

/// Records each parsed field's ranges in `buf` and what it means for framing and the connection.
#[inline]
fn record_fields(
    buf: &[u8],
    parsed: &[httparse::Header<'_>],
    head: &mut RequestHead,
) -> Result<(), HeadError> {
    // httparse hands out subslices of `buf`: where they lie in it are the offsets we keep.
    let span = |s: &[u8]| Span::within(buf, s);
    head.fields.reserve(parsed.len());
    for h in parsed {
        let value = span(h.value);
        head.facts.add(h.name.as_bytes(), h.value, value)?;
        head.fields.push((span(h.name.as_bytes()), value));
    }
    Ok(())
}

/// Parses an HTTP-version (RFC 9112 §2.3: `"HTTP/" DIGIT "." DIGIT`, case-sensitive).
#[inline]
fn parse_version(token: &[u8]) -> Result<Version, HeadError> {
    // The name compared as one five-byte array rather than byte by byte: this runs once per
    // request on the fast path.
    let Some((b"HTTP/", &[major @ b'0'..=b'9', b'.', minor @ b'0'..=b'9'])) =
        token.split_first_chunk::<5>()
    else {
        return Err(HeadError::MalformedVersion);
    };
    match (major, minor) {
        (b'1', b'0') => Ok(Version::Http10),
        // RFC 9110 §2.5: a higher minor version of a major we speak is served as the highest
        // minor we speak.
        (b'1', _) => Ok(Version::Http11),
        _ => Err(HeadError::VersionNotSupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a head parsed from `buf` says, to compare the two paths.
    fn parsed(head: &RequestHead, buf: &[u8]) -> String {
        format!(
            "{:?} {:?} {:?} {:?} {:?} {:?}",
            head.method_bytes(buf),
            head.target(buf),
            head.target_form(),
            head.version(),
            head.header_ranges().collect::<Vec<_>>(),
            head.framing()
        )
    }

    /// The whole-head path (one call with everything) and the line scan (a byte at a time) give
    /// the same answer and the same parsed head, on the usual request-line shape and just off it.
    #[test]
    fn the_whole_head_path_and_the_line_scan_agree() {
        let long_method = format!("{} / HTTP/1.1\r\nHost: h\r\n\r\n", "M".repeat(20));
        let heads: [&[u8]; 16] = [
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\r\n\r\nGET /a?b HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.9\r\nHost: h\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n",
            long_method.as_bytes(),
        ];
        for buf in heads {
            let mut head = RequestHead::new();
            let once = HeadDetector::new(Limits::default()).detect(buf, &mut head);
            let mut detector = HeadDetector::new(Limits::default());
            let mut scanned = RequestHead::new();
            let mut bytewise = Ok((0, Step::WouldBlock));
            for end in 0..=buf.len() {
                bytewise = detector.detect(&buf[..end], &mut scanned);
                if !matches!(bytewise, Ok((_, Step::WouldBlock))) {
                    break;
                }
            }
            let shown = String::from_utf8_lossy(buf);
            assert_eq!(once, bytewise, "{shown:?}");
            if let Ok((_, Step::Ready(()))) = once {
                assert_eq!(parsed(&head, buf), parsed(&scanned, buf), "{shown:?}");
            }
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version(b"HTTP/1.0"), Ok(Version::Http10));
        assert_eq!(parse_version(b"HTTP/1.1"), Ok(Version::Http11));
        assert_eq!(parse_version(b"HTTP/1.9"), Ok(Version::Http11));
        for v in [&b"HTTP/2.0"[..], b"HTTP/0.9", b"HTTP/3.0", b"HTTP/9.9"] {
            assert_eq!(
                parse_version(v),
                Err(HeadError::VersionNotSupported),
                "{v:?}"
            );
        }
        for v in [
            &b"HTTP/1"[..],
            b"http/1.1",
            b"HTTP/1.10",
            b"HTTP/11",
            b"HTTP/1.x",
            b"HTTP/2",
            b"",
            b"HTTP/1.1 ",
        ] {
            assert_eq!(parse_version(v), Err(HeadError::MalformedVersion), "{v:?}");
        }
    }
}
