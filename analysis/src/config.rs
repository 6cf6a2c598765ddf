//! The one config file both binaries read: `$XDG_CONFIG_HOME/perfagent/config.toml` (or
//! `--config FILE`), in sections. Every section is deserialized the same way, straight from the
//! file's text, so an error anywhere names the file, the line and what was expected.
//!
//! Sections: `[agent]`, `[statsd]`, `[http]`, `[store]`, `[profiler]` (the agent), `[targets]`
//! and `[capacity]` (the analyses). Each reader refuses unknown keys inside its own section;
//! [`ConfigFile::check_sections`] refuses sections nobody reads.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Every section a tool of the product reads.
pub const SECTIONS: &[&str] =
    &["agent", "statsd", "http", "store", "profiler", "targets", "capacity", "alerts", "probes", "remote_write"];

/// A config problem, naming where it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something in the file, at a line.
    #[error("{}:{line}: {message}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// An environment variable's value.
    #[error("{var}: invalid value '{value}': {expected}")]
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// The form expected.
        expected: String,
    },
}

/// The config file's path when none is given: `$XDG_CONFIG_HOME/perfagent/config.toml`, else
/// `~/.config/perfagent/config.toml`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("perfagent").join("config.toml"))
}

/// A config file read into memory.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// The file given (`explicit`), else the default one if it exists; `None` when there is
    /// no file to read.
    pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => match default_path(env) {
                Some(p) if p.exists() => p,
                _ => return Ok(None),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        Ok(Some(Self { path, text }))
    }

    /// A file from text (for tests and for callers that read it themselves).
    pub fn from_text(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self { path: path.into(), text: text.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())].iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// An error at a byte offset of the file.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::At { path: self.path.clone(), line: self.line_of(offset), message: message.into() }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map_or(1, |s| self.line_of(s.start));
        ConfigError::At { path: self.path.clone(), line, message: e.message().trim().to_owned() }
    }

    fn document(&self) -> Result<toml::Spanned<toml::de::DeTable<'_>>, ConfigError> {
        toml::de::DeTable::parse(&self.text).map_err(|e| self.toml_error(&e))
    }

    /// The section `[name]` deserialized as `T` (keys, values and their spans straight from
    /// the text), or `None` when the file has no such section.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        let doc = self.document()?;
        let Some(value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v.clone()) else {
            return Ok(None);
        };
        T::deserialize(toml::de::ValueDeserializer::from(value)).map(Some).map_err(|e| self.toml_error(&e))
    }

    /// Refuse a section no tool reads (a typo like `[statd]`), naming its line.
    pub fn check_sections(&self) -> Result<(), ConfigError> {
        let doc = self.document()?;
        for (key, _) in doc.get_ref().iter() {
            if !SECTIONS.contains(&key.get_ref().as_ref()) {
                let expected: Vec<String> = SECTIONS.iter().map(|s| format!("[{s}]")).collect();
                return Err(self.error_at(
                    key.span().start,
                    format!("unknown section [{}]; expected one of {}", key.get_ref(), expected.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Agent {
        service: Option<toml::Spanned<String>>,
        flush_interval: Option<String>,
    }

    #[test]
    fn sections_deserialize_with_lines_for_every_error() {
        let f = ConfigFile::from_text("c.toml", "[targets]\np95 = \"1s\"\n\n[agent]\nservice = \"x\"\nflush = 1\n");
        let e = f.section::<Agent>("agent").unwrap_err().to_string();
        assert!(e.starts_with("c.toml:6: unknown field `flush`, expected"), "{e}");
        let f = ConfigFile::from_text("c.toml", "[agent]\n\nservice = \"api\"\n");
        let a = f.section::<Agent>("agent").unwrap().unwrap();
        assert_eq!(f.line_of(a.service.unwrap().span().start), 3);
        assert!(f.section::<Agent>("targets").unwrap().is_none());
        let e = ConfigFile::from_text("c.toml", "[agent\n").section::<Agent>("agent").unwrap_err().to_string();
        assert!(e.starts_with("c.toml:1: "), "{e}");
    }

    #[test]
    fn unknown_sections_are_named_with_their_line() {
        let f = ConfigFile::from_text("c.toml", "[agent]\n\n[statd]\nudp = \"x\"\n");
        let e = f.check_sections().unwrap_err().to_string();
        assert!(e.starts_with("c.toml:3: unknown section [statd]; expected one of [agent], [statsd]"), "{e}");
        ConfigFile::from_text("c.toml", "[capacity]\nrps = 5\n").check_sections().unwrap();
    }

    #[test]
    fn the_default_path_follows_xdg() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        assert_eq!(
            default_path(&env(&[("XDG_CONFIG_HOME", "/c"), ("HOME", "/h")])),
            Some(PathBuf::from("/c/perfagent/config.toml"))
        );
        assert_eq!(default_path(&env(&[("HOME", "/h")])), Some(PathBuf::from("/h/.config/perfagent/config.toml")));
        assert_eq!(default_path(&env(&[])), None);
    }
}
