//! may_minihttp "Hello, World!" on one worker: `may-hello ADDR`.

use may_minihttp::{HttpServer, HttpService, Request, Response};
use std::io;

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _request: Request, response: &mut Response) -> io::Result<()> {
        response.header("Content-Type: text/plain");
        response.body("Hello, World!");
        Ok(())
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    may::config().set_workers(1);
    match HttpServer(Hello).start(addr.as_str()) {
        Ok(server) => {
            eprintln!("may-hello: serving on http://{addr}");
            let _ = server.join();
        }
        Err(e) => {
            eprintln!("may-hello: {e}");
            std::process::exit(1);
        }
    }
}
