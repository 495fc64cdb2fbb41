//! The application profiles on hyper 1.x and tokio's current-thread runtime, for
//! `asycamore-bench profiles`: `hyper-profiles ADDR [UPSTREAM]`.
//!
//! The same handlers as asycamore's demo binary, written as a hyper user would write them:
//!
//! | path | answer |
//! |---|---|
//! | `/` | `Hello, World!` (`tiny`) |
//! | `/bytes?n=N&write=W` | N bytes of `x` with `Content-Length`, as a body of W-byte frames (`large`, `stream`, `many-writes`) |
//! | `POST /bytes` | the body read to its end and dropped, `{"bytes": N}` (`upload`) |
//! | `/sleep?ms=N` | after a tokio timer of N ms (`timer`) |
//! | `/blocking?ms=N` | after N ms of `thread::sleep` on tokio's blocking pool, 4 threads (`blocking`) |
//! | `/proxy/...` | relayed to UPSTREAM through hyper-util's pooled client (`proxy`) |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Reply = Response<BoxBody<Bytes, hyper::Error>>;

/// The 64 KiB every piece of `/bytes` is cut from.
static BLOCK: [u8; 65536] = [b'x'; 65536];

/// `left` bytes of `x` in frames of `piece` bytes, with an exact size hint (so hyper sends a
/// `Content-Length`).
struct Pieces {
    left: u64,
    piece: usize,
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let size = (self.left as usize).min(self.piece);
        self.left -= size as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&BLOCK[..size])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Query parameter `name` as a number (`default` when absent or bad).
fn param(request: &Request<Incoming>, name: &str, default: u64) -> u64 {
    request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
struct Upstream {
    client: Client<HttpConnector, Incoming>,
    base: Option<String>,
}

async fn handle(request: Request<Incoming>, upstream: Upstream) -> Result<Reply, hyper::Error> {
    let path = request.uri().path().to_owned();
    if path == "/" {
        return Ok(full(StatusCode::OK, "text/plain", &b"Hello, World!"[..]));
    }
    if path == "/bytes" {
        if request.method() == hyper::Method::POST || request.method() == hyper::Method::PUT {
            let mut body = request.into_body();
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    bytes += data.len() as u64;
                }
            }
            let answer = format!("{{\"bytes\": {bytes}}}\n");
            return Ok(full(StatusCode::OK, "application/json", answer));
        }
        let n = param(&request, "n", 13);
        let piece = param(&request, "write", n.clamp(1, 65536)).clamp(1, 65536) as usize;
        let mut response = Response::new(Pieces { left: n, piece }.boxed());
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain"),
        );
        return Ok(response);
    }
    if path == "/sleep" {
        let ms = param(&request, "ms", 0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(full(StatusCode::OK, "text/plain", format!("slept {ms} ms\n")));
    }
    if path == "/blocking" {
        let ms = param(&request, "ms", 0);
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms)))
            .await;
        return Ok(full(StatusCode::OK, "text/plain", format!("blocked {ms} ms\n")));
    }
    if let (Some(rest), Some(base)) = (path.strip_prefix("/proxy"), &upstream.base) {
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let rest = if rest.is_empty() { "/" } else { rest };
        let (mut parts, body) = request.into_parts();
        parts.uri = match format!("{base}{rest}{query}").parse() {
            Ok(uri) => uri,
            Err(_) => return Ok(full(StatusCode::BAD_REQUEST, "text/plain", "bad target\n")),
        };
        parts.headers.remove(hyper::header::HOST);
        return match upstream.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => Ok(response.map(|b| b.boxed())),
            Err(_) => Ok(full(StatusCode::BAD_GATEWAY, "text/plain", "bad gateway\n")),
        };
    }
    Ok(full(StatusCode::NOT_FOUND, "text/plain", "not found\n"))
}

async fn serve(addr: SocketAddr, upstream: Upstream) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // EMFILE and friends: wait instead of spinning on a listener that stays readable.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, upstream.clone()));
            let _ = http1::Builder::new()
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = match args.next().map(|a| a.parse()) {
        Some(Ok(addr)) => addr,
        _ => {
            eprintln!("usage: hyper-profiles ADDR [UPSTREAM-ADDR]");
            std::process::exit(2);
        }
    };
    let base = args.next().map(|up| format!("http://{up}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hyper-profiles: runtime: {e}");
            std::process::exit(1);
        }
    };
    let _guard = runtime.enter();
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector);
    let upstream = Upstream { client, base };
    if let Err(e) = runtime.block_on(serve(addr, upstream)) {
        eprintln!("hyper-profiles: {e}");
        std::process::exit(1);
    }
}
