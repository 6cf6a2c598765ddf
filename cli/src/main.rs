//! The `perfctl` binary. Exit codes: 0 ok, 1 error, 2 usage error, 3 targets violated
//! (`stats --check`). A closed pipe (`perfctl series | head`) is not an error.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use perfctl::cmd::{capacity, demo, export, flamegraph, import, profile, query, series, stats};
use perfctl::style::{Paint, color_stdout};
use perfctl::window::{WindowArgs, no_data, parse_duration, rfc3339};

#[derive(Debug, Parser)]
#[command(name = "perfctl", version, about = "Read what perfagent recorded")]
struct Cli {
    /// Store path [default: $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/perf.db]
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Config file, for `[targets]` [default: $XDG_CONFIG_HOME/perfagent/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls, cached %, batched %, success rate, retries, latency, cache and pool hit rates,
    /// the host, and targets violated, over a window (`--last 24h`).
    Stats {
        #[command(flatten)]
        window: WindowArgs,
        /// Only operations matching this glob, e.g. 'vm.*'.
        #[arg(long, value_name = "GLOB")]
        op: Option<String>,
        /// Split operations by this tag, e.g. service.
        #[arg(long, value_name = "TAG")]
        by: Option<String>,
        /// Exit with status 3 when a target is violated (for scripts and CI).
        #[arg(long)]
        check: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = stats::Format::Table)]
        format: stats::Format,
    },
    /// List series with their labels and stored point counts (a cardinality report).
    Series {
        /// Only the N series with the most points.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = series::Format::Table)]
        format: series::Format,
    },
    /// Run the product end to end with no setup: an agent, a simulated instrumented cloud CLI
    /// and a StatsD app for 30 s, then stats, a flame graph and a capacity projection. Writes
    /// to --db, else $PERFAGENT_DB, else $XDG_DATA_HOME/perfagent/demo.db.
    Demo {
        /// How long the simulated apps run.
        #[arg(long, value_name = "S", default_value_t = 30.0)]
        seconds: f64,
    },
    /// What each resource (CPU, memory, disk, network, requests) will need in N months, and
    /// when it crosses the target and runs out, from its recent peak.
    Capacity {
        /// Annual growth rate, compounded monthly (0.3 or 30%), or `auto` to fit it to history.
        #[arg(long, value_name = "RATE", value_parser = capacity::parse_growth)]
        growth: capacity::Growth,
        /// Horizon in months.
        #[arg(long, value_name = "N", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=120))]
        months: u32,
        /// Target utilization, 0–1.
        #[arg(long, value_name = "RATIO", default_value_t = 0.7)]
        target: f64,
        /// Spare instances on top of what the load needs.
        #[arg(long, value_name = "N", default_value_t = 1)]
        redundancy: u32,
        /// The peak is the highest hourly mean within this window.
        #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "30d")]
        peak_window: std::time::Duration,
        /// Capacity of resources with no natural 100 %: rps=500,net=1Gbit [default: [capacity]
        /// in the config file]
        #[arg(long, value_name = "LIST", value_parser = capacity::parse_capacities)]
        capacity: Option<capacity::Capacities>,
        /// Also draw history and projection to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Pretend it is this time (RFC 3339); for reproducible output.
        #[arg(long, value_name = "TIME", hide = true)]
        now: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = capacity::Format::Table)]
        format: capacity::Format,
    },
    /// Where an operation's wall time goes (phases, CPU) and what to change, with savings
    /// computed from the recorded data.
    Profile {
        /// The operation, e.g. vm.start.
        op: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this service's calls.
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = profile::Format::Table)]
        format: profile::Format,
    },
    /// A flame graph (SVG, by inferno) of one operation's CPU samples over a window.
    Flamegraph {
        /// The operation, e.g. vm.list.
        op: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Only this service's samples.
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Write here instead of <op>.svg ("-" for standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Print the merged folded stacks instead of drawing.
        #[arg(long, conflicts_with_all = ["icicle", "diff"])]
        folded: bool,
        /// Draw an icicle graph (root at the top).
        #[arg(long)]
        icicle: bool,
        /// Reverse stack order: leaf functions at the root, their callers above.
        #[arg(long)]
        reverse: bool,
        /// Differential flame graph against --baseline-since/--baseline-until (normalized to
        /// the same sample total; red grew, blue shrank).
        #[arg(long, requires = "baseline_since")]
        diff: bool,
        /// Baseline window start: RFC 3339 or a duration ago.
        #[arg(long, value_name = "TIME", requires = "diff")]
        baseline_since: Option<String>,
        /// Baseline window end [default: the window's start].
        #[arg(long, value_name = "TIME", requires = "diff")]
        baseline_until: Option<String>,
    },
    /// Load data into the store: OpenMetrics/Prometheus text with timestamps, CSV, or folded
    /// stacks for an operation. The agent must not be running on the same store.
    Import {
        /// The file ("-" for standard input).
        file: PathBuf,
        /// Input format [default: from the extension (.om/.prom, .csv, .folded) or the contents;
        /// with --op, folded].
        #[arg(long, value_enum)]
        format: Option<import::Format>,
        /// Operation the folded stacks belong to.
        #[arg(long, value_name = "NAME")]
        op: Option<String>,
        /// Service to file the data under [default: imported]
        #[arg(long, value_name = "NAME", default_value = "imported")]
        service: String,
        /// Time the folded stacks were sampled: RFC 3339 or a duration ago [default: now]
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Pretend it is this time (RFC 3339); for reproducible tests.
        #[arg(long, value_name = "TIME", hide = true)]
        now: Option<String>,
    },
    /// Series over a window, one point per step, as OpenMetrics (for Prometheus tooling), CSV
    /// or JSON.
    Export {
        /// Which series: `name{label="value",…}` (globs allowed) [default: all]
        #[arg(default_value = "")]
        selector: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Step length [default: 1m]
        #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "1m")]
        step: std::time::Duration,
        /// Output format.
        #[arg(long, value_enum, default_value_t = export::Format::Openmetrics)]
        format: export::Format,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// One aggregation per step per matching series, e.g.
    /// `perfctl query 'op.duration{op="vm.list"}' --last 24h --step 1h --agg p95`.
    Query {
        /// `name{label="value",…}`; the name may be a glob (`op.*`), matchers are =, !=, =~ and
        /// !~ (globs).
        selector: String,
        /// Step length, e.g. 1m, 1h [default: 5m]
        #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "5m")]
        step: std::time::Duration,
        /// sum, rate, count, min, max, avg, last, or a percentile like p95.
        #[arg(long, value_name = "AGG", value_parser = perfstore::Agg::parse, default_value = "sum")]
        agg: perfstore::Agg,
        #[command(flatten)]
        window: WindowArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = query::Format::Table)]
        format: query::Format,
    },
}

/// Exit status when `stats --check` finds a violated target.
const VIOLATED: u8 = 3;

fn run_demo(
    db_flag: Option<&std::path::Path>,
    config: Option<&std::path::Path>,
    seconds: f64,
) -> anyhow::Result<ExitCode> {
    if !(seconds > 0.0 && seconds <= 3600.0) {
        anyhow::bail!("invalid value '{seconds}' for '--seconds': expected a number of seconds between 1 and 3600");
    }
    let (db, started_ms) = demo::run(db_flag, seconds)?;
    let now = WindowArgs::default().now_ms()?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let dbs = db.display().to_string();
    let since = rfc3339(started_ms);
    writeln!(out, "$ perfctl --db {dbs} stats --since {since}")?;
    let targets = perfctl::targets::load(config, &|k| std::env::var(k).ok())?;
    let range = perfstore::TimeRange::new(started_ms.div_euclid(1000) * 1000, now + 1);
    let report = stats::collect(&db, &stats::Options { range, op: None, by: None }, &targets)?;
    stats::render(&report, stats::Format::Table, Paint(color_stdout()), &mut out)?;

    let svg = db.with_file_name("vm.list.svg");
    writeln!(out, "\n$ perfctl --db {dbs} flamegraph vm.list --since {since} -o {}", svg.display())?;
    let fopts = flamegraph::Options {
        op: "vm.list".into(),
        service: None,
        range,
        baseline: None,
        icicle: false,
        reverse: false,
    };
    match flamegraph::collect(&db, &fopts) {
        Ok(stacks) => {
            let mut buf = Vec::new();
            flamegraph::write_svg(&stacks, &fopts, &mut buf)?;
            std::fs::write(&svg, buf).with_context(|| format!("writing {}", svg.display()))?;
            writeln!(out, "{}  ({} CPU samples of vm.list; open it in a browser)", svg.display(), stacks.samples())?;
        }
        Err(e) => writeln!(out, "no flame graph: {e:#}")?,
    }

    writeln!(out, "\n$ perfctl --db {dbs} capacity --growth auto --months 12 --capacity rps=40")?;
    let copts = capacity::Options {
        now_ms: now,
        growth: capacity::Growth::Auto,
        months: 12,
        target: 0.7,
        redundancy: 1,
        peak_window_ms: 30 * 86_400_000,
        history_ms: 366 * 86_400_000,
        capacities: capacity::Capacities { rps: Some(40.0), net_bytes_per_s: None },
    };
    let report = capacity::collect(&db, &copts)?;
    capacity::render(&report, capacity::Format::Table, &mut out)?;

    writeln!(out, "\nNext, try:")?;
    for c in [
        format!("perfctl --db {dbs} stats --since {since} --op 'vm.*' --format json"),
        format!("perfctl --db {dbs} stats --last 1h --by service"),
        format!("perfctl --db {dbs} flamegraph ssm.send_command --since {since} --icicle"),
        format!("perfctl --db {dbs} query 'op.duration{{op=\"vm.list\"}}' --last 30d --step 1d --agg p95"),
        format!("perfctl --db {dbs} capacity --growth 0.5 --plot capacity.svg"),
        format!("perfctl --db {dbs} series --top 10"),
        format!("perfctl --db {dbs} export --last 30d --step 1h -o history.om"),
    ] {
        writeln!(out, "  {c}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db_flag = cli.db.clone();
    let db = match cli.db {
        Some(p) => p,
        None => perfstore::default_path()?,
    };
    match cli.command {
        Command::Profile { op, window, service, format } => {
            let report = profile::collect(&db, &op, service.as_deref(), window.range()?)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            profile::render(&report, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { seconds } => run_demo(db_flag.as_deref(), cli.config.as_deref(), seconds),
        Command::Stats { window, op, by, check, format } => {
            let targets = perfctl::targets::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
            let opts = stats::Options { range: window.range()?, op, by };
            let report = stats::collect(&db, &opts, &targets)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            stats::render(&report, format, Paint(color_stdout()), &mut out)?;
            out.flush()?;
            Ok(if check && !report.violations.is_empty() { ExitCode::from(VIOLATED) } else { ExitCode::SUCCESS })
        }
        Command::Capacity { growth, months, target, redundancy, peak_window, capacity, plot, now, format } => {
            if !(target > 0.0 && target <= 1.0) {
                anyhow::bail!(
                    "invalid value '{target}' for '--target': expected a utilization between 0 and 1 like 0.7"
                );
            }
            let capacities = match capacity {
                Some(c) => c,
                None => capacity::capacities_from_config(cli.config.as_deref())?,
            };
            let now_ms = WindowArgs { now, ..WindowArgs::default() }.now_ms()?;
            let opts = capacity::Options {
                now_ms,
                growth,
                months,
                target,
                redundancy,
                peak_window_ms: peak_window.as_millis() as i64,
                history_ms: 366 * 86_400_000,
                capacities,
            };
            let report = capacity::collect(&db, &opts)?;
            if let Some(p) = &plot {
                std::fs::write(p, capacity::plot(&report)).with_context(|| format!("writing {}", p.display()))?;
                eprintln!("plot: {}", p.display());
            }
            let stdout = io::stdout();
            let mut out = stdout.lock();
            capacity::render(&report, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Flamegraph {
            op,
            window,
            service,
            output,
            folded,
            icicle,
            reverse,
            diff: _,
            baseline_since,
            baseline_until,
        } => {
            let range = window.range()?;
            let baseline = match baseline_since {
                Some(since) => {
                    let now = window.now_ms()?;
                    let start = perfctl::window::parse_time("--baseline-since", &since, now)?;
                    let end = match baseline_until {
                        Some(u) => perfctl::window::parse_time("--baseline-until", &u, now)?,
                        None => range.start_ms,
                    };
                    if start >= end {
                        anyhow::bail!("the baseline window is empty: --baseline-since must be before --baseline-until");
                    }
                    Some(perfstore::TimeRange::new(start, end))
                }
                None => None,
            };
            let opts = flamegraph::Options { op, service, range, baseline, icicle, reverse };
            let stacks = flamegraph::collect(&db, &opts)?;
            let to_stdout = output.as_deref() == Some(std::path::Path::new("-"));
            if folded && (output.is_none() || to_stdout) {
                let stdout = io::stdout();
                let mut out = stdout.lock();
                flamegraph::write_folded(&stacks, &mut out)?;
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            if to_stdout {
                let stdout = io::stdout();
                let mut out = stdout.lock();
                flamegraph::write_svg(&stacks, &opts, &mut out)?;
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let path = output.unwrap_or_else(|| flamegraph::default_output(&opts.op));
            let mut buf = Vec::new();
            if folded {
                flamegraph::write_folded(&stacks, &mut buf)?;
            } else {
                flamegraph::write_svg(&stacks, &opts, &mut buf)?;
            }
            std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
            println!("{}", path.display());
            eprintln!(
                "{} of {}: {} samples, {} stacks, {} → {}",
                if folded { "folded stacks" } else { "flame graph" },
                opts.op,
                stacks.samples(),
                stacks.stacks.len(),
                rfc3339(range.start_ms),
                rfc3339(range.end_ms)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { file, format, op, service, at, now } => {
            let window = WindowArgs { now, ..WindowArgs::default() };
            let now = window.now_ms()?;
            let at = at.map(|t| perfctl::window::parse_time("--at", &t, now)).transpose()?;
            let opts = import::Options { file, format, op, service, at_ms: at.unwrap_or(now), now_ms: now };
            let summary = import::run(&db, &opts)?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { selector, window, step, format, output } => {
            let range = window.range()?;
            let e = export::collect(&db, &selector, range, step.as_millis().max(1) as i64)?;
            if e.series.is_empty() {
                let subject = if selector.is_empty() { String::new() } else { format!(" for {selector}") };
                return Err(no_data(&subject, range, &db, Some(e.matched), e.newest_ms));
            }
            let mut sink: Box<dyn Write> = match &output {
                Some(p) => Box::new(io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(io::BufWriter::new(io::stdout().lock())),
            };
            match format {
                export::Format::Openmetrics => export::write_openmetrics(&e, &mut sink)?,
                export::Format::Csv => export::write_csv(&e, &mut sink)?,
                export::Format::Json => export::write_json(&e, &mut sink)?,
            }
            sink.flush()?;
            if let Some(p) = output {
                let points: usize = e.series.iter().map(|s| s.1.len()).sum();
                eprintln!("wrote {} series, {points} points to {}", e.series.len(), p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query { selector, step, agg, window, format } => {
            let range = window.range()?;
            let result = query::run(&db, &selector, range, step.as_millis().max(1) as i64, agg)?;
            if result.series.is_empty() {
                return Err(no_data(&format!(" for {selector}"), range, &db, Some(result.matched), result.newest_ms));
            }
            let stdout = io::stdout();
            let mut out = stdout.lock();
            query::render(&result, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Series { top, format } => {
            let rows = series::collect(&db, top)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            series::render(&rows, format, &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
