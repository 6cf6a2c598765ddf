//! Whether the agent is ready, and why not: what `/readyz` answers and the writer thread
//! updates when the store stops taking writes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the agent is ready, and why not when it is degraded.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    degraded: Mutex<Option<String>>,
}

impl Health {
    /// Listening and writing.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Degraded (with the reason), or not (`None`).
    pub fn set_degraded(&self, why: Option<String>) {
        *self.degraded.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// `Ok` when ready, else why not (`starting`, `degraded: …`).
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::SeqCst) {
            return Err("starting".into());
        }
        match &*self.degraded.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => Err(format!("degraded: {why}")),
            None => Ok(()),
        }
    }
}
