//! `perfagent config show|check|default`.

use std::path::PathBuf;

use crate::config::Flags;

/// `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print every setting, its value and its source (default, file:line, env, flag).
    Show {
        /// Config file [default: $XDG_CONFIG_HOME/perfagent/config.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration; exit 1 with the file, line and key of the first problem.
    Check {
        /// Config file [default: $XDG_CONFIG_HOME/perfagent/config.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print a commented config file with every key at its default.
    Default,
}

/// Run a `config` subcommand.
pub(crate) fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Default => print!("{}", crate::config::default_file_text()),
        Command::Check { config } => match super::load_config(config, &Flags::default())?.file {
            Some(f) => println!("{}: ok", f.display()),
            None => println!("no config file; the defaults and environment are valid"),
        },
        Command::Show { config } => {
            let r = super::load_config(config, &Flags::default())?;
            match &r.file {
                Some(f) => println!("# file: {}", f.display()),
                None => println!("# file: none"),
            }
            let width = r.settings.iter().map(|s| s.key.len() + s.value.len() + 3).max().unwrap_or(0);
            for s in &r.settings {
                let kv = format!("{} = {}", s.key, s.value);
                println!("{kv:<width$}  # {}", s.source);
            }
        }
    }
    Ok(())
}
