//! `perfctl import FILE`: OpenMetrics, CSV or folded stacks into the store (see
//! [`crate::import`]).

use std::path::PathBuf;
use std::process::ExitCode;

use super::Global;
use crate::import::{Format, Options, run as import};
use crate::window::{WindowArgs, parse_time};

/// `import` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The file ("-" for standard input).
    file: PathBuf,
    /// Input format [default: from the extension (.om/.prom, .csv, .statsd, .folded) or the contents;
    /// with --op, folded].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Operation the folded stacks belong to.
    #[arg(long, value_name = "NAME")]
    op: Option<String>,
    /// Service to file data under that names none (StatsD lines without a `service` tag too).
    #[arg(long, value_name = "NAME", default_value = "imported")]
    service: String,
    /// Time of folded stacks and of StatsD lines without `|T`: RFC 3339 or a duration ago
    /// [default: now]
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Pretend it is this time (RFC 3339); for reproducible tests.
    #[arg(long, value_name = "TIME", hide = true)]
    now: Option<String>,
}

/// Run `import`.
pub fn run(g: &Global, a: Args) -> anyhow::Result<ExitCode> {
    let now = WindowArgs { now: a.now, ..WindowArgs::default() }.now_ms()?;
    let at = a.at.map(|t| parse_time("--at", &t, now)).transpose()?;
    let opts =
        Options { file: a.file, format: a.format, op: a.op, service: a.service, at_ms: at.unwrap_or(now), now_ms: now };
    let summary = import(&g.db, &opts)?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
