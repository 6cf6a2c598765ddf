//! The listener: hyper's HTTP/1 on a current-thread tokio runtime, one request per
//! connection, every connection under a deadline.
//!
//! ## Failure modes
//! A client that sends headers slowly is closed after [`Limits::header_timeout`]; one that
//! trickles its body after [`Limits::request_deadline`]; headers past
//! [`Limits::max_header_bytes`] get 431; past [`Limits::max_connections`] a new connection is
//! closed at once. Other clients are served meanwhile: each connection is its own task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

/// What one client may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line and headers, bytes (16 KiB).
    pub max_header_bytes: usize,
    /// Time to send the request line and headers (5 s).
    pub header_timeout: Duration,
    /// Time for the whole request and response (30 s).
    pub request_deadline: Duration,
    /// Connections served at once; more are closed on arrival (1024, or half the open-file
    /// limit when that is lower).
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 << 10,
            header_timeout: Duration::from_secs(5),
            request_deadline: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
}

/// Raise the soft open-file limit to the hard one (many connections need many descriptors)
/// and return it.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct we own; setrlimit reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Bind `addr` now (so a port in use is a startup error naming it) and serve `app` on a
/// thread of its own until the process ends.
pub fn serve(addr: SocketAddr, app: axum::Router, limits: Limits) -> std::io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding HTTP listener {addr}: {e}")))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let nofile = raise_nofile();
    let limits = Limits { max_connections: limits.max_connections.min((nofile / 2).max(16) as usize), ..limits };
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    std::thread::Builder::new().name("perfagent-http".into()).spawn(move || {
        rt.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => accept(l, app, limits).await,
                Err(e) => log::error!("HTTP listener {local}: {e}"),
            }
        });
    })?;
    Ok(Server { addr: local })
}

async fn accept(listener: tokio::net::TcpListener, app: axum::Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors or memory: wait a little rather than spin.
                log::warn!("accepting an HTTP connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream); // over the connection limit
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .max_header_size(limits.max_header_bytes)
                .keep_alive(false)
                // A client may shut its write side after the request (`nc -N`, scripts): answer it.
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.request_deadline, conn).await;
            drop(slot);
        });
    }
}
