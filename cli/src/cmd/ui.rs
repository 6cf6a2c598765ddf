//! `perfctl ui`: the dashboard over any store, read-only, without an agent (a copied store, the
//! demo's, one from another machine). The same pages and `/api/v1` as the agent's `/`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use perfanalysis::capacity::Capacities;
use perfanalysis::targets::Targets;

use super::{Global, env};
use crate::window::WindowArgs;

/// Where `perfctl ui` listens by default (the agent's endpoint is on 9465).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9466";

/// `ui` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to serve on; loopback only (from another machine, tunnel it:
    /// `ssh -L 9466:127.0.0.1:9466 HOST`).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Pretend it is this time (RFC 3339); for reproducible pages.
    #[arg(long, value_name = "TIME", hide = true)]
    now: Option<String>,
}

/// The dashboard for the store of `g`, with its config file's targets and capacities.
pub fn dashboard(g: &Global, now: Option<String>) -> anyhow::Result<perfdash::Dashboard> {
    let file = g.config_file()?;
    let mut d = perfdash::Dashboard::new(g.db.clone(), "perfctl ui");
    d.targets = Targets::load(file.as_ref(), &env)?;
    d.capacities = Capacities::from_config(file.as_ref())?;
    if let Some(t) = now {
        let fixed = WindowArgs { now: Some(t), ..WindowArgs::default() }.now_ms()?;
        d.now = Arc::new(move || fixed);
    }
    Ok(d)
}

/// Serve `d` on `listen` (loopback only); returns the URL.
pub fn serve(d: perfdash::Dashboard, listen: SocketAddr) -> anyhow::Result<String> {
    if !listen.ip().is_loopback() {
        crate::usage!(
            "invalid value '{listen}' for '--listen': perfctl ui serves loopback only (127.0.0.1 or [::1]); from \
             another machine, tunnel it: ssh -L 9466:127.0.0.1:9466 HOST"
        );
    }
    let policy = perfweb::Policy::for_listener(listen, None, &[], "(perfctl ui is read-only)");
    let app = perfweb::guard::layer(perfdash::router(d), policy);
    let server = perfweb::serve(listen, app, perfweb::Limits::default()).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            "; another perfctl ui may be running: pick another port with --listen 127.0.0.1:PORT (0 picks a free one)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}{hint}")
    })?;
    Ok(format!("http://{}/", server.addr))
}

/// Run `ui`: check the store opens, serve, and wait until interrupted.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    drop(g.reader()?); // a missing or unreadable store is said now, not on the first page
    let url = serve(dashboard(g, a.now)?, a.listen)?;
    println!("{url}");
    eprintln!("perfctl ui: serving {} read-only at {url} (Ctrl-C to stop)", g.db.display());
    loop {
        std::thread::park();
    }
}
