//! `files`: serves a folder's files, with `sendfile(2)` or a piece at a time as the client takes
//! them.
//!
//! By default the handler answers the head and gives the open file (or the range of it) to
//! [`Exchange::send_file`]: the connection then sends it with `sendfile(2)`, the kernel copying
//! from the page cache to the socket — WSGI's `wsgi.file_wrapper`, done by the server. With
//! `--no-sendfile` ([`Files::with_sendfile`]) it is a tutorial of a *producer* instead (the
//! `wsgi.file_wrapper` question: how to send a file without holding it in memory). The handler
//! owns the open file and one reused [`PIECE`]-byte buffer.
//! Each resume it writes what the buffer holds; when `write` says `WouldBlock` (the client is
//! slower than the disk) it returns `WouldBlock` and is resumed once the output has drained; when
//! the buffer is empty it reads the next piece. A 1 GiB download therefore costs one buffer, not
//! one gibibyte.
//!
//! The file is read inline, on the loop: a read of a regular file that the page cache holds
//! takes microseconds, and `poll(2)` cannot wait for a regular file anyway (it is always
//! "ready"). A server on slow or network disks would hand those reads to the
//! [thread pool](crate::pool) as `blocking` does.
//!
//! What it speaks of HTTP: `Content-Length`; `Last-Modified` and `If-Modified-Since` (→ `304`,
//! RFC 9110 §13.1.3); one `Range: bytes=a-b`, `a-` or `-n` (→ `206` with `Content-Range`, or
//! `416` with `Content-Range: bytes */len` when it lies past the end; several ranges get the
//! whole file, which RFC 9110 §14.2 allows), with `If-Range` on the date; a content type from the
//! extension; `HEAD`. A directory is served through its `index.html`; without one it is listed
//! only if listings were asked for (`--list-dirs`), and a directory asked for without its
//! trailing slash is redirected (`301`) to it, so relative links in the page resolve.
//!
//! Safety: the path is the percent-decoded `PATH_INFO`, so `%2e%2e` and `%2f` have become `..`
//! and `/` before the checks. A `..` segment or a NUL is refused outright; then each segment below
//! the canonical root is looked at with `lstat`: with no symbolic link among them the joined path
//! is canonical already, and when there is one it is canonicalized (following the links) and
//! must still lie inside the canonical root, so a link pointing outside is refused too (`403`).

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use executor::{Cx, Step};

use crate::response::date::format_imf_fixdate;
use crate::service::{App, Environ, Exchange, Handler, Method};

/// Bytes read from the file at a time (and the size of each download's buffer).
pub const PIECE: usize = 64 * 1024;

/// The `files` application: serves the tree under `root`.
#[derive(Debug, Clone)]
pub struct Files {
    root: Rc<Path>,
    list_dirs: bool,
    sendfile: bool,
}

impl Files {
    /// Serves `root`, with directory listings if `list_dirs`. The root is canonicalized here;
    /// if that fails (it does not exist) every request is a 404.
    pub fn new(root: impl Into<PathBuf>, list_dirs: bool) -> Files {
        let root = root.into();
        let root = root.canonicalize().unwrap_or(root);
        Files {
            root: root.into(),
            list_dirs,
            sendfile: true,
        }
    }

    /// Whether file bodies go out with `sendfile(2)` (the default: the bytes go from the page
    /// cache to the socket unchanged, ranges included) or are read and written piece by piece
    /// (`--no-sendfile`, for comparison).
    pub fn with_sendfile(mut self, on: bool) -> Files {
        self.sendfile = on;
        self
    }
}

/// The handler of one file request.
#[derive(Debug)]
pub enum FilesHandler {
    /// The request has not been looked at yet.
    Start {
        /// The canonical root.
        root: Rc<Path>,
        /// Whether a directory without `index.html` is listed.
        list_dirs: bool,
        /// Whether the body goes out with `sendfile(2)`.
        sendfile: bool,
    },
    /// The head is sent; `remaining` more bytes of `file` go out through `buf[start..end]`.
    Sending {
        /// The open file, positioned at the next byte to read.
        file: File,
        /// Bytes still to read from the file.
        remaining: u64,
        /// The reused piece buffer.
        buf: Vec<u8>,
        /// First byte of `buf` not yet written.
        start: usize,
        /// End of the bytes read into `buf`.
        end: usize,
    },
}

impl App for Files {
    fn methods(&self) -> Option<&[Method]> {
        Some(&[Method::Get, Method::Head])
    }

    fn handler(&self, _environ: &mut Environ<'_>) -> Box<dyn Handler> {
        Box::new(FilesHandler::Start {
            root: Rc::clone(&self.root),
            list_dirs: self.list_dirs,
            sendfile: self.sendfile,
        })
    }
}

impl Handler for FilesHandler {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match self {
                FilesHandler::Start {
                    root,
                    list_dirs,
                    sendfile,
                } => {
                    match start(ex, root, *list_dirs, *sendfile) {
                        Some(sending) => *self = sending,
                        None => return Step::Ready(()), // answered in full
                    }
                }
                FilesHandler::Sending {
                    file,
                    remaining,
                    buf,
                    start,
                    end,
                } => {
                    // First write what the buffer holds...
                    while *start < *end {
                        match ex.write(&buf[*start..*end], cx) {
                            Ok(Step::Ready(n)) => *start += n,
                            // The client is behind: resumed when the output has drained.
                            Ok(Step::WouldBlock) => return Step::WouldBlock,
                            Err(_) => {
                                ex.close_after();
                                return Step::Ready(());
                            }
                        }
                    }
                    if *remaining == 0 {
                        return Step::Ready(());
                    }
                    // ...then read the next piece into the same buffer.
                    let want = buf
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    match file.read(&mut buf[..want]) {
                        Ok(n) if n > 0 => {
                            *start = 0;
                            *end = n;
                            *remaining -= n as u64;
                        }
                        // Shrunk or unreadable since it was opened: the promised length cannot be
                        // kept, so the connection closes after the short body.
                        Ok(_) | Err(_) => {
                            ex.close_after();
                            return Step::Ready(());
                        }
                    }
                }
            }
        }
    }

    fn kind(&self) -> &'static str {
        "files"
    }
}

/// Answers everything but a file body; returns the `Sending` state when there is a body to send.
fn start(
    ex: &mut Exchange<'_>,
    root: &Path,
    list_dirs: bool,
    sendfile: bool,
) -> Option<FilesHandler> {
    let environ = ex.environ();
    let method = environ.request_method();
    if method != "GET" && method != "HEAD" {
        ex.respond(
            405,
            &[("Allow", "GET, HEAD"), ("Content-Type", TEXT)],
            b"method not allowed\n",
        );
        return None;
    }
    let path_info = environ.path_info_bytes();
    let (mut path, mut meta) = match resolve(root, &path_info) {
        Ok(found) => found,
        Err(refusal) => {
            refuse(ex, refusal);
            return None;
        }
    };
    if meta.is_dir() {
        if !path_info.ends_with(b"/") {
            // `/files/dir` → `/files/dir/`, keeping the path as the client spelled it.
            let mut location = String::from_utf8_lossy(environ.raw_path()).into_owned();
            location.push('/');
            if !environ.query_string().is_empty() {
                location.push('?');
                location.push_str(environ.query_string());
            }
            ex.respond(
                301,
                &[("Location", &location), ("Content-Type", TEXT)],
                b"moved to the directory's slashed path\n",
            );
            return None;
        }
        let index = path.join("index.html");
        match index.canonicalize().map(|p| (p.metadata(), p)) {
            Ok((Ok(index_meta), index)) if index.starts_with(root) && index_meta.is_file() => {
                path = index;
                meta = index_meta;
            }
            _ if list_dirs => {
                let raw_path = environ.raw_path().to_vec();
                list(ex, &path, &raw_path);
                return None;
            }
            _ => {
                refuse(ex, Refusal::Forbidden);
                return None;
            }
        }
    }
    if !meta.is_file() {
        // A device, a socket, a FIFO (which would block the loop on open): not ours to serve.
        refuse(ex, Refusal::NotFound);
        return None;
    }
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            refuse(ex, Refusal::from_io(&e));
            return None;
        }
    };
    send_head(ex, &path, &meta, file, sendfile)
}

/// Writes the head of a file response (200, 206, 304 or 416); returns the body's state.
fn send_head(
    ex: &mut Exchange<'_>,
    path: &Path,
    meta: &Metadata,
    mut file: File,
    sendfile: bool,
) -> Option<FilesHandler> {
    let environ = ex.environ();
    let len = meta.len();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let last_modified = format_imf_fixdate(modified);
    let last_modified = std::str::from_utf8(&last_modified).unwrap_or_default();

    // RFC 9110 §13.1.3: If-Modified-Since is ignored when If-None-Match is present (we send no
    // ETag, so no If-None-Match can match).
    if environ.header("if-none-match").is_none()
        && let Some(since) = environ
            .header_str("if-modified-since")
            .and_then(parse_http_date)
        && modified <= since
    {
        ex.respond(304, &[("Last-Modified", last_modified)], b"");
        return None;
    }

    let content_type = content_type(path);
    let is_head = environ.request_method() == "HEAD";
    let mut range = None;
    // RFC 9110 §14.2: Range is only defined for GET; If-Range must match the date exactly.
    if environ.request_method() == "GET"
        && let Some(value) = environ.header_str("range")
        && environ
            .header("if-range")
            .is_none_or(|v| v == last_modified.as_bytes())
    {
        match parse_range(value, len) {
            RangeAnswer::Whole => {}
            RangeAnswer::Part { first, last } => range = Some((first, last)),
            RangeAnswer::Unsatisfiable => {
                let content_range = format!("bytes */{len}");
                ex.respond(
                    416,
                    &[("Content-Range", &content_range), ("Content-Type", TEXT)],
                    b"range not satisfiable\n",
                );
                return None;
            }
        }
    }
    let (status, first, count) = match range {
        Some((first, last)) => (206, first, last - first + 1),
        None => (200, 0, len),
    };
    let count_text = count.to_string();
    let content_range = range.map(|(first, last)| format!("bytes {first}-{last}/{len}"));
    let mut headers = vec![
        ("Content-Type", content_type),
        ("Content-Length", count_text.as_str()),
        ("Last-Modified", last_modified),
        ("Accept-Ranges", "bytes"),
    ];
    if let Some(content_range) = &content_range {
        headers.push(("Content-Range", content_range));
    }
    if let Err(e) = ex.start_response(status, &headers) {
        ex.fail(500, &e.to_string());
        return None;
    }
    if is_head || count == 0 {
        return None;
    }
    if sendfile {
        // The bytes go out as they are on disk: the connection sends them from the page cache.
        if let Err(e) = ex.send_file(file, first, count) {
            eprintln!("asycamore: files: {e}");
            ex.close_after();
        }
        return None;
    }
    if first > 0
        && let Err(e) = file.seek(SeekFrom::Start(first))
    {
        eprintln!("asycamore: files: cannot seek {}: {e}", path.display());
        ex.close_after();
        return None;
    }
    let buf_len = usize::try_from(count).map_or(PIECE, |n| n.min(PIECE));
    Some(FilesHandler::Sending {
        file,
        remaining: count,
        buf: vec![0; buf_len],
        start: 0,
        end: 0,
    })
}

/// `text/plain` in UTF-8, for the short messages.
const TEXT: &str = "text/plain; charset=utf-8";

/// Why a path is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A NUL in the path: 400.
    BadPath,
    /// Outside the root, or a directory without an index: 403.
    Forbidden,
    /// Nothing there: 404.
    NotFound,
}

impl Refusal {
    fn from_io(e: &io::Error) -> Refusal {
        if e.kind() == io::ErrorKind::PermissionDenied {
            Refusal::Forbidden
        } else {
            Refusal::NotFound
        }
    }
}

fn refuse(ex: &mut Exchange<'_>, refusal: Refusal) {
    let (status, body): (u16, &[u8]) = match refusal {
        Refusal::BadPath => (400, b"bad path\n"),
        Refusal::Forbidden => (403, b"forbidden\n"),
        Refusal::NotFound => (404, b"not found\n"),
    };
    ex.respond(status, &[("Content-Type", TEXT)], body);
}

/// The canonical file system path for the decoded `path_info` under the canonical `root`, and
/// what is there (followed through links).
///
/// # Errors
/// [`Refusal::BadPath`] for a NUL, [`Refusal::Forbidden`] for a `..` segment or a path that
/// resolves (through symbolic links) outside `root`, [`Refusal::NotFound`] if nothing is there.
pub fn resolve(root: &Path, path_info: &[u8]) -> Result<(PathBuf, Metadata), Refusal> {
    if path_info.contains(&0) {
        return Err(Refusal::BadPath);
    }
    // Refused before the disk is touched: what lies outside the root is no business of ours.
    if path_info
        .split(|&b| b == b'/')
        .any(|segment| segment == b"..")
    {
        return Err(Refusal::Forbidden);
    }
    let mut joined = root.to_path_buf();
    let mut linked = false;
    let mut last = None;
    for segment in path_info.split(|&b| b == b'/') {
        match segment {
            b"" | b"." | b".." => {}
            name => {
                joined.push(std::ffi::OsStr::from_bytes(name));
                // One lstat per segment below the root (one for a file at its top), where
                // canonicalizing would readlink every component from `/` down: without a link
                // below the canonical root, the joined path (no `.`, `..` or empty segment
                // left) is canonical already.
                if !linked {
                    let meta = joined
                        .symlink_metadata()
                        .map_err(|e| Refusal::from_io(&e))?;
                    linked = meta.file_type().is_symlink();
                    last = Some(meta);
                }
            }
        }
    }
    if !linked {
        // No link anywhere: the last lstat is the stat (the root's own when nothing was joined).
        let meta = match last {
            Some(meta) => meta,
            None => joined.metadata().map_err(|e| Refusal::from_io(&e))?,
        };
        return Ok((joined, meta));
    }
    let canonical = joined.canonicalize().map_err(|e| Refusal::from_io(&e))?;
    if canonical.starts_with(root) {
        let meta = canonical.metadata().map_err(|e| Refusal::from_io(&e))?;
        Ok((canonical, meta))
    } else {
        Err(Refusal::Forbidden)
    }
}

/// What to do with a `Range` header for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Send the whole thing (no usable range: several ranges, another unit, bad syntax).
    Whole,
    /// Send bytes `first..=last`.
    Part {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
    },
    /// The range lies past the end: 416.
    Unsatisfiable,
}

/// Reads one `bytes=a-b`, `bytes=a-` or `bytes=-n` range (RFC 9110 §14.1.2).
pub fn parse_range(value: &str, len: u64) -> RangeAnswer {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (number(first), number(last), last.is_empty()) {
        // `-n`: the last n bytes.
        (None, Some(n), _) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part {
                    first: len.saturating_sub(n),
                    last: len - 1,
                }
            }
        }
        // `a-` and `a-b`.
        (Some(a), b, open) if open || b.is_some() => {
            let b = b.unwrap_or(u64::MAX);
            if b < a {
                RangeAnswer::Whole // invalid: ignored (RFC 9110 §14.2)
            } else if a >= len {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Part {
                    first: a,
                    last: b.min(len - 1),
                }
            }
        }
        _ => RangeAnswer::Whole,
    }
}

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); the obsolete
/// formats are not accepted (the condition is then ignored, which is always safe).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let b = s.trim().as_bytes();
    if b.len() != 29 || &b[25..] != b" GMT" || b[3] != b',' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let digits = &b[r];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u64 + 1;
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (hour, minute, second) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    // Howard Hinnant's days-from-civil, the inverse of the `Date` formatter's.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// The content type for a file name's extension (a small table; the rest is octet-stream).
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" | "rs" | "toml" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "mp4" => "video/mp4",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// Answers with an HTML listing of directory `dir`, asked for as `raw_path`.
fn list(ex: &mut Exchange<'_>, dir: &Path, raw_path: &[u8]) {
    let mut names: Vec<(String, bool)> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect(),
        Err(e) => {
            refuse(ex, Refusal::from_io(&e));
            return;
        }
    };
    names.sort();
    let title = html_escape(&String::from_utf8_lossy(raw_path));
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        page.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            percent_encode(name.as_bytes()),
            html_escape(&name)
        ));
    }
    page.push_str("</ul></body></html>\n");
    ex.respond(
        200,
        &[("Content-Type", "text/html; charset=utf-8")],
        page.as_bytes(),
    );
}

/// Escapes text for HTML element content and attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment: everything but RFC 3986 unreserved characters.
fn percent_encode(segment: &[u8]) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAnswer::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part { first: 0, last: 9 });
        assert_eq!(
            parse_range("bytes=90-", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            parse_range("bytes=90-200", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Part {
                first: 90,
                last: 99
            }
        );
        assert_eq!(parse_range("bytes=-1000", 100), Part { first: 0, last: 99 });
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("bytes=5-1", 100), Whole);
        assert_eq!(parse_range("bytes=+1-2", 100), Whole);
        assert_eq!(parse_range("bytes=-", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
    }

    #[test]
    fn http_dates_round_trip() {
        for secs in [0, 784_111_777, 951_782_400, 1_795_046_400, 4_102_444_799] {
            let text = format_imf_fixdate(secs);
            let text = std::str::from_utf8(&text).unwrap();
            assert_eq!(parse_http_date(text), Some(secs), "{text}");
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("Sun, 06 Xyz 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn dot_dot_and_nul_are_refused_before_touching_the_disk() {
        let root = Path::new("/nonexistent-root");
        assert_eq!(
            resolve(root, b"/../etc/passwd").err(),
            Some(Refusal::Forbidden)
        );
        assert_eq!(resolve(root, b"/a/../../x").err(), Some(Refusal::Forbidden));
        assert_eq!(resolve(root, b"/a\0b").err(), Some(Refusal::BadPath));
        assert_eq!(resolve(root, b"/missing").err(), Some(Refusal::NotFound));
    }

    #[test]
    fn listing_names_are_escaped() {
        assert_eq!(
            html_escape("<a href=\"x\">"),
            "&lt;a href=&quot;x&quot;&gt;"
        );
        assert_eq!(percent_encode(b"a b/%.txt"), "a%20b%2F%25.txt");
    }
}
