//! A strict, incremental reader of the server's response stream, written apart from the server's
//! own code so that it checks the server rather than agrees with it.
//!
//! Bytes are fed as each simulated read delivers them, with the virtual time of that read; every
//! response (interim or final) that is complete comes out with the time its head ended and the
//! time its last byte arrived. Anything RFC 9112 does not allow a server to send is an error:
//! a bad status line, a field line that is not `token: value`, both or neither of
//! `Content-Length` and `Transfer-Encoding: chunked` where a body is due (close-delimited only
//! when the response says it closes), a chunk that does not end with CRLF.

use std::time::Duration;

/// One response read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The status code.
    pub status: u16,
    /// The header fields, names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Trailer field names, lower-cased.
    pub trailers: Vec<String>,
    /// When the last byte of the head arrived.
    pub head_at: Duration,
    /// When the last byte of the response arrived.
    pub done_at: Duration,
    /// The request it answers (its index on the connection): an interim response belongs to the
    /// request whose final response comes next.
    pub request: usize,
}

impl Parsed {
    /// The first field called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True if the response says the connection closes after it.
    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }

    /// True for an interim (1xx) response. `101 Switching Protocols` is not one: it is the
    /// last HTTP response on the connection (RFC 9110 §15.2.2).
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// How the body of the response being read is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// A stream of responses being read.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// `(end offset, time)` of each read, in order.
    reads: Vec<(usize, Duration)>,
    /// Where the next response begins.
    pos: usize,
    /// The responses read so far, in order.
    pub responses: Vec<Parsed>,
    /// Final responses read so far (the index of the request the next final one answers).
    pub finals: usize,
    /// Set once the stream is broken; nothing more is read.
    pub error: Option<String>,
    /// Set once a `101` was read: the bytes after it are not HTTP.
    upgraded: bool,
}

impl Reader {
    /// Everything received so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// True if bytes after the last complete response are waiting (a response begun and not
    /// finished).
    pub fn has_partial(&self) -> bool {
        !self.upgraded && self.pos < self.buf.len()
    }

    /// The bytes after a `101 Switching Protocols`, once one was read.
    pub fn upgraded(&self) -> Option<&[u8]> {
        self.upgraded.then(|| &self.buf[self.pos..])
    }

    /// True once request `i` has had an interim `100 Continue`.
    pub fn continued(&self, i: usize) -> bool {
        self.responses
            .iter()
            .any(|r| r.request == i && r.status == 100)
    }

    /// Feeds the bytes of one read at `at`; `is_head(k)` says whether the `k`-th final response
    /// answers a `HEAD` request (so has no body).
    pub fn feed(&mut self, bytes: &[u8], at: Duration, is_head: &dyn Fn(usize) -> bool) {
        self.buf.extend_from_slice(bytes);
        self.reads.push((self.buf.len(), at));
        self.parse(false, is_head);
    }

    /// The peer closed: a close-delimited body ends here; any other partial response is cut.
    pub fn end(&mut self, is_head: &dyn Fn(usize) -> bool) {
        self.parse(true, is_head);
    }

    /// When the byte at `offset` arrived.
    fn time_of(&self, offset: usize) -> Duration {
        self.reads
            .iter()
            .find(|(end, _)| *end > offset)
            .or(self.reads.last())
            .map_or(Duration::ZERO, |&(_, t)| t)
    }

    fn parse(&mut self, eof: bool, is_head: &dyn Fn(usize) -> bool) {
        while self.error.is_none() && !self.upgraded && self.pos < self.buf.len() {
            match parse_one(&self.buf[self.pos..], eof, is_head(self.finals)) {
                Ok(Some((mut parsed, head_len, len))) => {
                    parsed.head_at = self.time_of(self.pos + head_len - 1);
                    parsed.done_at = self.time_of(self.pos + len - 1);
                    parsed.request = self.finals;
                    self.pos += len;
                    if !parsed.is_interim() {
                        self.finals += 1;
                    }
                    self.upgraded = parsed.status == 101;
                    self.responses.push(parsed);
                }
                Ok(None) => break,
                Err(e) => self.error = Some(format!("{e} at byte {}", self.pos)),
            }
        }
    }
}

/// Parses one response at the start of `buf`: `Some((response, head length, total length))`,
/// `None` if more bytes are needed.
fn parse_one(
    buf: &[u8],
    eof: bool,
    answers_head: bool,
) -> Result<Option<(Parsed, usize, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if eof {
            Err("response head cut short".into())
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("field line without a colon: {line:?}"))?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(format!("bad field name {name:?}"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("bad field value in {line:?}"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let head_len = head_end + 4;
    let mut parsed = Parsed {
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        head_at: Duration::ZERO,
        done_at: Duration::ZERO,
        request: 0,
    };
    let framing = framing(&parsed, answers_head)?;
    let rest = &buf[head_len..];
    let body_len = match framing {
        Framing::None => 0,
        Framing::Length(n) => {
            if rest.len() < n {
                return if eof {
                    Err(format!("body cut short: {} of {n} bytes", rest.len()))
                } else {
                    Ok(None)
                };
            }
            parsed.body = rest[..n].to_vec();
            n
        }
        Framing::Chunked => match dechunk(rest, &mut parsed)? {
            Some(n) => n,
            None if eof => return Err("chunked body cut short".into()),
            None => return Ok(None),
        },
        Framing::UntilClose => {
            if !eof {
                return Ok(None);
            }
            parsed.body = rest.to_vec();
            rest.len()
        }
    };
    Ok(Some((parsed, head_len, head_len + body_len)))
}

/// `HTTP/1.1 200 OK`: the version the server speaks, three digits, a space, any reason.
fn parse_status_line(line: &str) -> Result<u16, String> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (code, reason) = rest
        .split_at_checked(3)
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !reason.starts_with(' ') {
        return Err(format!("bad status line {line:?}"));
    }
    let status: u16 = code.parse().map_err(|_| format!("bad status {code:?}"))?;
    if !(100..=999).contains(&status) {
        return Err(format!("bad status {status}"));
    }
    Ok(status)
}

/// RFC 9112 §6.3 for a response, strictly: no body for 1xx, 204, 304 and HEAD; otherwise exactly
/// one of a digits-only `Content-Length` and a `Transfer-Encoding` of `chunked`, or, only when
/// the response says `Connection: close`, a body that runs to the close.
fn framing(parsed: &Parsed, answers_head: bool) -> Result<Framing, String> {
    let lengths: Vec<&str> = parsed
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let te = parsed.header("transfer-encoding");
    if lengths.len() > 1 {
        return Err("several Content-Length fields".into());
    }
    if !lengths.is_empty() && te.is_some() {
        return Err("both Content-Length and Transfer-Encoding".into());
    }
    let status = parsed.status;
    let no_content = (100..200).contains(&status) || status == 204 || status == 304;
    if no_content && (te.is_some() || (status != 304 && !lengths.is_empty())) {
        return Err(format!("framing fields on a {status}"));
    }
    if no_content || answers_head {
        return Ok(Framing::None);
    }
    if let Some(te) = te {
        return if te.eq_ignore_ascii_case("chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(format!("unexpected Transfer-Encoding {te:?}"))
        };
    }
    if let Some(n) = lengths.first() {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad Content-Length {n:?}"));
        }
        return n
            .parse()
            .map(Framing::Length)
            .map_err(|_| format!("bad Content-Length {n:?}"));
    }
    if parsed.says_close() {
        Ok(Framing::UntilClose)
    } else {
        Err("a body with no framing on a connection that stays open".into())
    }
}

/// De-chunks `buf` into `parsed`: `Some(length consumed)` once the last chunk and trailers are
/// in, `None` if more bytes are needed.
fn dechunk(buf: &[u8], parsed: &mut Parsed) -> Result<Option<usize>, String> {
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = &buf[at..at + line_end];
        if line.is_empty() || line.len() > 16 || !line.iter().all(u8::is_ascii_hexdigit) {
            return Err(format!(
                "bad chunk size line {:?}",
                String::from_utf8_lossy(line)
            ));
        }
        let size = usize::from_str_radix(std::str::from_utf8(line).unwrap_or("x"), 16)
            .map_err(|_| "chunk size overflows")?;
        at += line_end + 2;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let Some(end) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                let field = &buf[at..at + end];
                at += end + 2;
                if field.is_empty() {
                    parsed.body = body;
                    return Ok(Some(at));
                }
                let field = String::from_utf8_lossy(field);
                let (name, _) = field
                    .split_once(':')
                    .ok_or_else(|| format!("trailer without a colon: {field:?}"))?;
                parsed.trailers.push(name.to_ascii_lowercase());
            }
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
