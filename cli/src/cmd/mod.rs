//! One module per subcommand: its arguments (clap) and `run`, which gathers from the store,
//! computes through `perfanalysis`, and prints through [`crate::render`].

pub mod capacity;
pub mod connect;
#[cfg(feature = "demo")]
pub mod demo;
pub mod export;
pub mod flamegraph;
pub mod import;
pub mod profile;
pub mod query;
pub mod series;
pub mod slo;
pub mod stats;
pub mod ui;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use perfanalysis::config::ConfigFile;
use perfstore::Reader;

/// What every subcommand gets: the store and the config file.
#[derive(Debug, Clone)]
pub struct Global {
    /// The store: `--db`, else `$PERFAGENT_DB`, else the default.
    pub db: PathBuf,
    /// `--db` as given (the demo picks its own default).
    pub db_flag: Option<PathBuf>,
    /// `--config` as given.
    pub config: Option<PathBuf>,
}

impl Global {
    /// The config file (`--config`, else the default one if it exists).
    pub fn config_file(&self) -> anyhow::Result<Option<ConfigFile>> {
        Ok(ConfigFile::load(self.config.as_deref(), &env)?)
    }

    /// Open the store read-only.
    pub fn reader(&self) -> anyhow::Result<Reader> {
        match Reader::open(&self.db) {
            Err(perfstore::Error::NotFound { path }) => Err(anyhow::anyhow!("{}", self.no_store(&path))),
            r => Ok(r?),
        }
    }

    /// What to say when there is no store at `path`: where the store came from, how to make
    /// one, and the demo's store when there is one.
    fn no_store(&self, path: &Path) -> String {
        let from = if self.db_flag.is_some() {
            "--db"
        } else if std::env::var_os("PERFAGENT_DB").is_some_and(|v| !v.is_empty()) {
            "$PERFAGENT_DB"
        } else {
            "the default store"
        };
        let text = format!(
            "{}: no perfagent store here ({from}); record into it with `perfagent start --db {}`, or read another \
             with --db PATH or PERFAGENT_DB",
            path.display(),
            path.display()
        );
        #[cfg(feature = "demo")]
        if let Ok((demo, _)) = crate::demo::demo_path(None)
            && demo != path
            && demo.exists()
        {
            return format!("{text}; the demo's store is {}: perfctl --db {} stats", demo.display(), demo.display());
        }
        text
    }
}

/// The process environment, as the config readers take it.
pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Run `f` with standard output locked and flushed after.
pub fn with_stdout(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    f(&mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The store path for messages.
pub fn shown(db: &Path) -> String {
    db.display().to_string()
}
