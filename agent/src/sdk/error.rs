//! What can go wrong starting the SDK.

use std::path::PathBuf;

/// Starting the SDK failed; the app decides what to do (record nothing, or refuse to start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// No store path was given and none could be derived from the environment.
    #[error("no store to record into: {0}")]
    NoStorePath(#[source] perfstore::Error),
    /// The store could not be opened (refused, corrupt, too new, unwritable).
    #[error("opening store {}: {source}", path.display())]
    Store {
        /// The store.
        path: PathBuf,
        /// Why.
        #[source]
        source: perfstore::Error,
    },
    /// Another process holds the store and does not take StatsD, so there is nowhere to send.
    #[error("{} is held by another process{} that takes no StatsD: cannot record into it", path.display(), pid.map_or(String::new(), |p| format!(" (pid {p})")))]
    HeldWithoutStatsd {
        /// The store.
        path: PathBuf,
        /// The holder, if known.
        pid: Option<u32>,
    },
    /// `forward` was given an address that is not `udp://HOST:PORT` or `unix:PATH`.
    #[error("{0}")]
    ForwardAddress(String),
    /// A socket or thread could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl SdkError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SdkError {
        let what = what.into();
        move |source| SdkError::Io { what, source }
    }
}
