//! `perfdash`: the dashboard over a perfagent store, served by the running agent at `/` and by
//! `perfctl ui` for any store (read-only, no agent needed).
//!
//! Two halves, one code path with `perfctl`:
//!
//! * **A JSON API under `/api/v1/`** ([`api`]): each endpoint takes the arguments of a
//!   `perfctl` command as query parameters, calls the same `perfanalysis` gather and compute
//!   functions, and returns the same document `perfctl … --format json` prints (`stats`,
//!   `profile`, `capacity`, `query`, `series`; `flamegraph` returns the merged stacks as JSON).
//!   Errors are `{"error": "…"}` with 400 (bad argument, naming it), 404 (no data, saying what
//!   the store holds) or 500.
//! * **Pages** ([`assets`]): one HTML shell, plain ES modules and a stylesheet embedded in the
//!   binary (no CDN, no build step). The pages build the DOM with `textContent` only, so an
//!   operation called `<script>` shows as text; the Content-Security-Policy allows scripts,
//!   styles and fetches from this origin only, and no inline script at all.
//!
//! Everything here is a GET that reads: the [`perfweb::guard`] in front of it checks the Host
//! (DNS rebinding) and, off loopback, the token.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::io::{Read, Write};
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("perf.db");
//! perfstore::Writer::open(&db, perfstore::StoreOptions::default())?.close()?;
//! let dash = perfdash::Dashboard::new(db, "perfctl ui");
//! let app = perfweb::guard::layer(perfdash::router(dash), perfweb::Policy::loopback(None));
//! let server = perfweb::serve("127.0.0.1:0".parse()?, app, perfweb::Limits::default())?;
//! let mut c = std::net::TcpStream::connect(server.addr)?;
//! c.write_all(b"GET /api/v1/series HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
//! let mut reply = String::new();
//! c.read_to_string(&mut reply)?;
//! assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("[]\n"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod assets;
pub mod chart;
mod params;

use std::path::PathBuf;
use std::sync::Arc;

use perfanalysis::capacity::Capacities;
use perfanalysis::targets::Targets;

/// What the dashboard reads and how.
#[derive(Clone)]
pub struct Dashboard {
    /// The store (opened read-only per request).
    pub db: PathBuf,
    /// Targets for `stats` (from the config file).
    pub targets: Targets,
    /// Capacities for `capacity` (from the config file).
    pub capacities: Capacities,
    /// Who serves it (`perfagent`, `perfctl ui`), shown in the page header.
    pub source: String,
    /// Now, Unix ms (the agent's clock, or a fixed time for reproducible pages).
    pub now: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").field("db", &self.db).field("source", &self.source).finish_non_exhaustive()
    }
}

impl Dashboard {
    /// The store at `db` with default targets and capacities, on the real clock.
    pub fn new(db: PathBuf, source: &str) -> Self {
        Self {
            db,
            targets: Targets::default(),
            capacities: Capacities::default(),
            source: source.to_owned(),
            now: Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }),
        }
    }
}

/// The dashboard's routes: `/`, `/assets/…` and `/api/v1/…` (no fallback, so it merges into
/// the agent's router).
pub fn router(d: Dashboard) -> axum::Router {
    assets::routes().merge(api::routes(Arc::new(d)))
}
