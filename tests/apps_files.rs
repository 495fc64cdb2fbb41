//! `/files/`: a 1 GiB download in bounded memory, conditional and range requests, directories,
//! and every way out of the root refused — against the spawned binary with `--root` a temporary
//! folder.
//!
//! `ASYCAMORE_BIG_BYTES` changes the 1 GiB (for a quicker local run).

mod util;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

use util::{PEAK_RSS_LIMIT_KIB, Reader, Response, big_bytes, connect, spawn_server};

/// A fresh folder `base` holding `secret.txt` next to `root/`, the folder that is served.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(name: &str) -> Tree {
        let base = std::env::temp_dir().join(format!("asycamore-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("root/sub")).unwrap();
        fs::create_dir_all(base.join("root/site")).unwrap();
        fs::write(base.join("secret.txt"), "the secret\n").unwrap();
        fs::write(base.join("root/hello.txt"), "hello, files\n").unwrap();
        fs::write(base.join("root/sub/a b.html"), "<p>a</p>\n").unwrap();
        fs::write(base.join("root/site/index.html"), "<p>index</p>\n").unwrap();
        Tree { base }
    }

    fn root(&self) -> String {
        self.base.join("root").to_str().unwrap().to_owned()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[track_caller]
fn get(addr: std::net::SocketAddr, target: &str, headers: &str) -> Response {
    request(addr, "GET", target, headers)
}

#[track_caller]
fn request(addr: std::net::SocketAddr, method: &str, target: &str, headers: &str) -> Response {
    let mut stream = connect(addr);
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n"
    )
    .unwrap();
    Reader::new(stream).response_to(method).expect("a response")
}

#[test]
fn a_1gib_download_streams_in_bounded_memory() {
    let tree = Tree::new("big");
    let total = big_bytes();
    let path = tree.base.join("root/big.bin");
    // Sparse: costs no disk. Marks at both ends show the right bytes arrive in the right place.
    let mut file = fs::File::create(&path).unwrap();
    file.set_len(total).unwrap();
    file.write_all(b"BEGIN").unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"END", total - 3).unwrap();
    drop(file);

    let server = spawn_server(&["--root", &tree.root()]);
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    stream
        .write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = util::read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {total}\r\n")),
        "{head}"
    );
    let mut received = 0u64;
    let mut first = Vec::new();
    let mut last = [0u8; 3];
    let mut buf = vec![0u8; 256 * 1024];
    while received < total {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {received} bytes");
        if first.len() < 5 {
            first.extend_from_slice(&buf[..n.min(5 - first.len())]);
        }
        for (i, b) in buf[..n].iter().enumerate() {
            let at = received + i as u64;
            if at >= total - 3 {
                last[(at - (total - 3)) as usize] = *b;
            }
        }
        received += n as u64;
    }
    assert_eq!(received, total);
    assert_eq!(first, b"BEGIN");
    assert_eq!(&last, b"END");
    let peak = server.status_kib("VmHWM");
    eprintln!("peak RSS while serving {total} bytes: {peak} KiB");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[test]
fn conditional_and_range_requests() {
    let tree = Tree::new("ranges");
    let server = spawn_server(&["--root", &tree.root()]);
    let addr = server.addr;
    let full = get(addr, "/files/hello.txt", "");
    assert_eq!(full.status, 200);
    assert_eq!(full.body, b"hello, files\n");
    assert_eq!(
        full.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    let modified = full.header("last-modified").unwrap().to_owned();

    let not_modified = get(
        addr,
        "/files/hello.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let older = get(
        addr,
        "/files/hello.txt",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(older.status, 200);

    let part = get(addr, "/files/hello.txt", "Range: bytes=7-11\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, b"files");
    assert_eq!(part.header("content-range"), Some("bytes 7-11/13"));
    let open = get(addr, "/files/hello.txt", "Range: bytes=7-\r\n");
    assert_eq!((open.status, &open.body[..]), (206, &b"files\n"[..]));
    let suffix = get(addr, "/files/hello.txt", "Range: bytes=-6\r\n");
    assert_eq!((suffix.status, &suffix.body[..]), (206, &b"files\n"[..]));
    let several = get(addr, "/files/hello.txt", "Range: bytes=0-1,3-4\r\n");
    assert_eq!((several.status, several.body.len()), (200, 13));
    let stale = get(
        addr,
        "/files/hello.txt",
        "Range: bytes=0-1\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(stale.status, 200);

    let past = get(addr, "/files/hello.txt", "Range: bytes=13-\r\n");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */13"));

    let head = request(addr, "HEAD", "/files/hello.txt", "");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    let post = request(addr, "POST", "/files/hello.txt", "Content-Length: 0\r\n");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn directories_redirect_serve_their_index_and_list_only_when_asked() {
    let tree = Tree::new("dirs");
    let server = spawn_server(&["--root", &tree.root()]);
    let r = get(server.addr, "/files/site", "");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/files/site/"));
    let r = get(server.addr, "/files/site/", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<p>index</p>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(get(server.addr, "/files/sub/", "").status, 403);
    assert_eq!(get(server.addr, "/files/sub/a%20b.html", "").status, 200);
    assert_eq!(get(server.addr, "/files/nothing-here", "").status, 404);
    drop(server);

    let listing = spawn_server(&["--root", &tree.root(), "--list-dirs"]);
    let r = get(listing.addr, "/files/sub/", "");
    assert_eq!(r.status, 200);
    let page = String::from_utf8(r.body).unwrap();
    assert!(
        page.contains("<a href=\"a%20b.html\">a b.html</a>"),
        "{page}"
    );
}

#[test]
fn every_way_out_of_the_root_is_refused() {
    let tree = Tree::new("escape");
    symlink("/etc", tree.base.join("root/etc")).unwrap();
    symlink(
        tree.base.join("secret.txt"),
        tree.base.join("root/link.txt"),
    )
    .unwrap();
    symlink("hello.txt", tree.base.join("root/inside.txt")).unwrap();
    let server = spawn_server(&["--root", &tree.root()]);
    for target in [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/%2e%2e%2fsecret.txt",
        "/files/%2E%2E%2Fsecret.txt",
        "/files/sub/../../secret.txt",
        "/files%2f..%2fsecret.txt",
        "/files/etc/passwd",
        "/files/etc/",
        "/files/link.txt",
        "/files/hello.txt%00.png",
    ] {
        let r = get(server.addr, target, "");
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{target}: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(!r.body.starts_with(b"the secret"), "{target}");
        assert!(!r.body.starts_with(b"root:"), "{target}");
    }
    // A link that stays inside the root is fine.
    assert_eq!(
        get(server.addr, "/files/inside.txt", "").body,
        b"hello, files\n"
    );
}

/// A patterned file of `len` bytes at `path`.
fn patterned(path: &std::path::Path, len: usize) -> Vec<u8> {
    let bytes = util::pattern(len, 11);
    fs::write(path, &bytes).unwrap();
    bytes
}

/// The same bytes whether the body goes out with `sendfile(2)` or is copied (`--no-sendfile`):
/// whole, as a range, after a range on the same connection, and nothing to HEAD.
#[test]
fn sendfile_and_the_copy_path_send_the_same_bytes() {
    let tree = Tree::new("sendfile");
    let bytes = patterned(&tree.base.join("root/data.bin"), 3 << 20);
    for flags in [&[][..], &["--no-sendfile"][..]] {
        let root = tree.root();
        let mut args = vec!["--root", &root[..]];
        args.extend_from_slice(flags);
        let server = spawn_server(&args);
        let mut stream = connect(server.addr);
        write!(
            stream,
            "GET /files/data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-1999999\r\n\r\n\
             GET /files/data.bin HTTP/1.1\r\nHost: t\r\n\r\n\
             HEAD /files/data.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = Reader::new(stream);
        let part = reader.response_to("GET").expect("the range");
        assert_eq!(part.status, 206, "{flags:?}");
        assert_eq!(part.body, &bytes[1000..2_000_000], "{flags:?}");
        let whole = reader.response_to("GET").expect("the whole file");
        assert_eq!(whole.status, 200, "{flags:?}");
        assert_eq!(whole.body, bytes, "{flags:?}");
        let head = reader.response_to("HEAD").expect("the HEAD");
        assert_eq!(head.header("content-length"), Some("3145728"), "{flags:?}");
        assert!(head.body.is_empty(), "{flags:?}");
        assert!(
            reader.closed(),
            "{flags:?}: the connection closes after the HEAD"
        );
    }
}

/// A file cut short while it is being sent ends the response short and closes the connection:
/// never a response that lies about its length and keeps the connection.
#[test]
fn a_file_that_shrinks_while_it_is_sent_ends_with_a_close() {
    let tree = Tree::new("shrinks");
    let path = tree.base.join("root/shrinks.bin");
    let total: u64 = 256 << 20;
    for flags in [&[][..], &["--no-sendfile"][..]] {
        // Sparse, so it costs no disk.
        let file = fs::File::create(&path).unwrap();
        file.set_len(total).unwrap();
        drop(file);
        let root = tree.root();
        let mut args = vec!["--root", &root[..]];
        args.extend_from_slice(flags);
        let server = spawn_server(&args);
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET /files/shrinks.bin HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let head = util::read_head(&mut stream);
        assert!(
            head.contains(&format!("Content-Length: {total}\r\n")),
            "{head}"
        );
        let mut buf = vec![0u8; 1 << 20];
        let mut received = 0u64;
        while received < 4 << 20 {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0, "{flags:?}: closed early");
            received += n as u64;
        }
        // Cut the file to 8 MiB: the server cannot send what it promised.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n as u64,
            }
        }
        assert!(received < total, "{flags:?}: {received} bytes");
        // The pipelined GET / is never answered on a connection whose response was cut.
        assert!(
            received <= (8 << 20) + (16 << 20),
            "{flags:?}: {received} bytes"
        );
    }
}
