//! `perfweb`: the HTTP endpoint of perfagent (and of `perfctl ui`), built to be attacked.
//!
//! [`serve`] runs an axum [`Router`](axum::Router) on hyper, on a small single-threaded tokio
//! runtime of its own thread (the StatsD receive loop and the store writer stay on theirs),
//! with [`Limits`]: header bytes, a header deadline, a whole-request deadline (not per read:
//! a client trickling a byte a second is cut off), and concurrent connections. [`guard`]
//! holds the request policy: the Host allow-list (DNS rebinding), the token every write needs
//! (a header no web page can send without a preflight, and preflights are refused), and the
//! security headers of every response.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! use perfweb::{Limits, Policy, serve};
//!
//! let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
//! let policy = Policy::loopback(None);
//! let server = serve("127.0.0.1:0".parse()?, perfweb::guard::layer(app, policy), Limits::default())?;
//! let mut c = std::net::TcpStream::connect(server.addr)?;
//! c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
//! let mut reply = String::new();
//! c.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200"));
//! assert!(reply.contains("x-content-type-options: nosniff"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod guard;
mod server;

pub use guard::Policy;
pub use server::{Limits, Server, serve};
