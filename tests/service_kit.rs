//! The small pieces apps are made of, over a real socket: [`Reply`] and [`from_fn`] behind the
//! router's method rules, [`Exchange::write_all`] to a client that reads slowly (nothing
//! dropped), and [`Timer`] waiting without holding the loop.

mod util;

use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use asycamore::config::Config;
use asycamore::executor::{Cx, Step};
use asycamore::middleware::{Methods, Router};
use asycamore::service::{App, Environ, Exchange, Handler, Method, Reply, Timer, from_fn};
use util::{Reader, connect, roundtrip, serve};

/// Bytes `/big` streams: far above the output's high-water mark, so `write_all` must wait.
const BIG: usize = 4 << 20;

/// Streams [`BIG`] bytes with `write_all`.
struct Big {
    body: Vec<u8>,
    sent: usize,
    started: bool,
}

impl Handler for Big {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        if !self.started {
            let length = self.body.len().to_string();
            if ex
                .start_response(200, &[("Content-Length", &length)])
                .is_err()
            {
                return Step::Ready(());
            }
            self.started = true;
        }
        match ex.write_all(&self.body, &mut self.sent, cx) {
            Ok(Step::WouldBlock) => Step::WouldBlock,
            Ok(Step::Ready(())) | Err(_) => Step::Ready(()),
        }
    }
}

/// Answers after `?ms=` milliseconds with a [`Timer`].
enum Wait {
    Start(u64),
    Waiting(Timer),
}

impl Handler for Wait {
    fn resume(&mut self, ex: &mut Exchange<'_>, cx: &mut Cx<'_>) -> Step<()> {
        loop {
            match self {
                Wait::Start(ms) => {
                    *self = Wait::Waiting(Timer::after(Duration::from_millis(*ms), cx));
                }
                Wait::Waiting(timer) => {
                    if let Step::WouldBlock = timer.poll(cx) {
                        return Step::WouldBlock;
                    }
                    ex.respond(200, &[], b"waited");
                    return Step::Ready(());
                }
            }
        }
    }
}

fn app() -> Rc<dyn App> {
    Rc::new(
        Router::new()
            .exact(
                "/hello",
                from_fn(|env: &mut Environ<'_>| match env.query_param("name") {
                    Some(name) => Reply::text(200, format!("Hello, {name}!")).boxed(),
                    None => Reply::text(400, "name is missing").boxed(),
                })
                .with_methods(&[Method::Get, Method::Head]),
            )
            .exact(
                "/json",
                from_fn(|_: &mut Environ<'_>| {
                    Reply::json(201, r#"{"ok": true}"#)
                        .header("X-Kit", "yes")
                        .boxed()
                }),
            )
            .exact(
                "/big",
                from_fn(|_: &mut Environ<'_>| {
                    Box::new(Big {
                        body: (0..BIG).map(|i| (i % 251) as u8).collect(),
                        sent: 0,
                        started: false,
                    })
                }),
            )
            .exact(
                "/wait",
                from_fn(|env: &mut Environ<'_>| {
                    let ms = env.query_param("ms").and_then(|m| m.parse().ok());
                    Box::new(Wait::Start(ms.unwrap_or(0)))
                }),
            ),
    )
}

#[test]
fn a_reply_and_a_closure_app_answer_under_the_method_rules() {
    let addr = serve(Config::default(), app);
    let ok = roundtrip(addr, b"GET /hello?name=kit HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, b"Hello, kit!");
    assert_eq!(ok.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        roundtrip(addr, b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n").status,
        400
    );
    let post = roundtrip(
        addr,
        b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD, OPTIONS"));
    let json = roundtrip(
        addr,
        b"PUT /json HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(json.status, 201, "a closure app without methods takes any");
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.header("x-kit"), Some("yes"));
    assert_eq!(json.body, br#"{"ok": true}"#);
}

#[test]
fn write_all_sends_every_byte_to_a_slow_reader() {
    let addr = serve(Config::default(), app);
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Read slowly at first, so the server's output fills and write_all has to wait.
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(5));
        let n = stream.read(&mut buf).unwrap();
        all.extend_from_slice(&buf[..n]);
    }
    stream.read_to_end(&mut all).unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &all[head_end..];
    assert_eq!(body.len(), BIG);
    assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn timers_wait_without_holding_the_loop() {
    let addr = serve(Config::default(), app);
    let start = Instant::now();
    let slow = std::thread::spawn(move || {
        roundtrip(addr, b"GET /wait?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
    });
    std::thread::sleep(Duration::from_millis(50));
    // Served while the other request waits on its timer.
    let quick = roundtrip(addr, b"GET /wait?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(quick.body, b"waited");
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "the quick one waited for the slow one"
    );
    let slow = slow.join().unwrap();
    assert_eq!(slow.body, b"waited");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "answered before its timer"
    );
}

fn resource() -> Rc<dyn App> {
    Rc::new(
        Methods::new()
            .get(|env: &mut Environ<'_>| {
                Reply::text(200, format!("read {}", env.path_info())).boxed()
            })
            .put(|_: &mut Environ<'_>| Reply::text(201, "stored").boxed())
            .delete(|_: &mut Environ<'_>| Reply::new(204, &b""[..]).boxed()),
    )
}

#[test]
fn methods_dispatch_by_method_and_answer_the_rest_themselves() {
    // Served alone (no router in front): `Methods` applies the rules itself.
    let addr = serve(Config::default(), resource);
    let get = roundtrip(addr, b"GET /k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((get.status, get.body.as_slice()), (200, &b"read /k"[..]));
    let mut stream = connect(addr);
    stream
        .write_all(b"HEAD /k HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = Reader::new(stream)
        .response_to("HEAD")
        .expect("a response to HEAD");
    assert_eq!(head.status, 200, "HEAD is GET's head");
    assert_eq!(head.header("content-length"), Some("7"));
    let put = roundtrip(
        addr,
        b"PUT /k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(put.status, 201);
    let delete = roundtrip(addr, b"DELETE /k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(delete.status, 204);
    let post = roundtrip(
        addr,
        b"POST /k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(
        post.header("allow"),
        Some("GET, HEAD, PUT, DELETE, OPTIONS")
    );
    let options = roundtrip(addr, b"OPTIONS /k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(options.status, 204);
    assert_eq!(
        options.header("allow"),
        Some("GET, HEAD, PUT, DELETE, OPTIONS")
    );
    let unknown = roundtrip(addr, b"BREW /k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(unknown.status, 501);

    // Mounted in a router: the same answers, the path relative to the mount.
    let addr = serve(Config::default(), || {
        Rc::new(Router::new().mount("/kv", resource()))
    });
    let get = roundtrip(addr, b"GET /kv/k HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((get.status, get.body.as_slice()), (200, &b"read /k"[..]));
    let post = roundtrip(
        addr,
        b"POST /kv/k HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(
        post.header("allow"),
        Some("GET, HEAD, PUT, DELETE, OPTIONS")
    );
}
