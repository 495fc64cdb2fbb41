//! The echo demo: an acceptor and one [`Echo`] task per client on a single executor.
//!
//! `cargo run -p asycamore-executor --example echo_server -- 127.0.0.1:7000`, then
//! `nc 127.0.0.1 7000`. Prints the executor's counters when stdin closes.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use executor::acceptor::Acceptor;
use executor::echo::Echo;
use executor::net::{Options, TcpListener};
use executor::{Executor, Task};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let addr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(addr, Options::default())?;
    println!("echo server on {}", listener.local_addr()?);
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = Acceptor::new(listener, |stream, _peer| -> Task {
        Box::new(Echo::new(stream))
    })
    .with_stop(Arc::clone(&stop));
    let mut executor = Executor::new()?;
    let id = executor.spawn(acceptor);
    // Graceful shutdown from another thread: raise the flag, then wake the acceptor.
    let waker = executor.waker(id);
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop.store(true, Ordering::Release);
        waker.wake();
    });
    executor.run()?;
    println!("{:#?}", executor.stats());
    Ok(())
}
