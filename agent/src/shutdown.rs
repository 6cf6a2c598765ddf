//! Shutdown on SIGTERM/SIGINT without polling: the signal sets a flag and writes a byte to a
//! socket pair whose read end the receive loop waits on next to its sockets, so an idle agent
//! sleeps until data, a signal or the next flush.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shutdown request that can be waited on with `poll(2)`.
#[derive(Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    wake_read: UnixStream,
    wake_write: UnixStream,
}

impl Shutdown {
    /// A new, unrequested shutdown.
    pub fn new() -> io::Result<Self> {
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_read.set_nonblocking(true)?;
        wake_write.set_nonblocking(true)?;
        Ok(Self { flag: Arc::new(AtomicBool::new(false)), wake_read, wake_write })
    }

    /// Request shutdown when any of `signals` arrives.
    pub fn on_signals(&self, signals: &[i32]) -> io::Result<()> {
        for &sig in signals {
            signal_hook::flag::register(sig, self.flag.clone())?;
            signal_hook::low_level::pipe::register(sig, self.wake_write.try_clone()?)?;
        }
        Ok(())
    }

    /// Request shutdown now.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = (&self.wake_write).write(&[1]);
    }

    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The descriptor that becomes readable when shutdown is requested.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_read.as_raw_fd()
    }
}

/// Wait until one of `fds` is readable or `timeout_ms` passes (EINTR counts as a wake-up).
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32) {
    let mut polls: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs for the whole call.
    unsafe {
        libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_wakes_a_waiter_and_sets_the_flag() {
        let s = Shutdown::new().unwrap();
        assert!(!s.requested());
        s.trigger();
        let t = std::time::Instant::now();
        wait_readable(&[s.wake_fd()], 10_000);
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "woken by the trigger, not the timeout");
        assert!(s.requested());
    }
}
