//! Every StatsD input the receive thread reads: the UDP socket, an optional Unix datagram
//! socket and an optional TCP listener with its connections (newline-delimited), all
//! non-blocking and waited on together with `poll(2)`, so one thread owns the aggregator.
//!
//! ## Failure modes
//! A TCP line longer than [`MAX_TCP_LINE`] is dropped and counted (`line_too_long`); a
//! connection past [`MAX_TCP_CONNECTIONS`] is refused and counted; a TCP stream that ends
//! without a final newline still has its last line taken. The Unix socket file is removed on
//! exit; a stale one left by a killed agent is replaced, a live one is refused.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::aggregate::Aggregator;
use super::listener::{BatchReceiver, UdpListener, bind_udp};

/// Longest TCP line kept while waiting for its newline.
pub const MAX_TCP_LINE: usize = 64 * 1024;
/// Most TCP connections at once.
pub const MAX_TCP_CONNECTIONS: usize = 256;

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

/// The bound inputs.
#[derive(Debug)]
pub struct Sources {
    /// The UDP socket.
    pub udp: UdpListener,
    unix: Option<(UnixDatagram, PathBuf)>,
    tcp: Option<TcpListener>,
    conns: Vec<Conn>,
    batch: BatchReceiver,
}

fn bind_unix(path: &Path) -> io::Result<UnixDatagram> {
    if path.exists() {
        // A socket nobody answers on is a leftover of a killed agent; anything else is not ours.
        let probe = UnixDatagram::unbound()?;
        match probe.connect(path) {
            Ok(()) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("binding StatsD socket {}: another process is listening there", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)?,
            Err(e) => return Err(io::Error::new(e.kind(), format!("binding StatsD socket {}: {e}", path.display()))),
        }
    }
    let sock = UnixDatagram::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("binding StatsD socket {}: {e}", path.display())))?;
    // Senders of the same user or group may write; others may not.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

impl Sources {
    /// Bind UDP, and the Unix and TCP listeners when asked for. Errors name the address.
    pub fn bind(udp: SocketAddr, unix: Option<&Path>, tcp: Option<SocketAddr>) -> io::Result<Self> {
        let udp = bind_udp(udp)?;
        udp.socket.set_nonblocking(true)?;
        let unix = match unix {
            Some(p) => Some((bind_unix(p)?, p.to_owned())),
            None => None,
        };
        let tcp = match tcp {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("binding StatsD TCP listener {addr}: {e}")))?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        Ok(Self { udp, unix, tcp, conns: Vec::new(), batch: BatchReceiver::default() })
    }

    /// Bound TCP address, if listening.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Unix socket path, if listening.
    pub fn unix_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|(_, p)| p.as_path())
    }

    /// Descriptors to wait on.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.udp.socket.as_raw_fd()];
        fds.extend(self.unix.as_ref().map(|(s, _)| s.as_raw_fd()));
        fds.extend(self.tcp.as_ref().map(AsRawFd::as_raw_fd));
        fds.extend(self.conns.iter().map(|c| c.stream.as_raw_fd()));
        fds
    }

    /// Read what is ready, at most about `max` reads; returns how many reads took data.
    /// `at_exit` takes unterminated TCP lines too.
    pub fn read_burst(&mut self, agg: &mut Aggregator, buf: &mut [u8], max: usize, at_exit: bool) -> usize {
        let mut reads = 0;
        while reads < max {
            match self.batch.recv(&self.udp.socket) {
                Ok(0) => break,
                Ok(n) => {
                    for i in 0..n {
                        match self.batch.datagram(i) {
                            Some(d) => agg.ingest_datagram(d),
                            None => agg.count_drop("truncated"),
                        }
                    }
                    reads += n;
                }
                Err(e) => {
                    log::error!("receiving StatsD over UDP: {e}");
                    break;
                }
            }
        }
        if let Some((sock, _)) = &self.unix {
            while reads < max {
                match sock.recv(buf) {
                    Ok(n) => {
                        agg.ingest_datagram(&buf[..n]);
                        reads += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        if let Some(l) = &self.tcp {
            while let Ok((stream, _)) = l.accept() {
                if self.conns.len() >= MAX_TCP_CONNECTIONS {
                    agg.count_drop("tcp_connection_limit");
                    continue;
                }
                if stream.set_nonblocking(true).is_ok() {
                    self.conns.push(Conn { stream, pending: Vec::new() });
                }
            }
        }
        self.conns.retain_mut(|c| {
            loop {
                match c.stream.read(buf) {
                    Ok(0) => {
                        // End of stream: the last line may lack its newline.
                        agg.ingest_datagram(&c.pending);
                        return false;
                    }
                    Ok(n) => {
                        reads += 1;
                        c.pending.extend_from_slice(&buf[..n]);
                        if let Some(last) = memchr::memrchr(b'\n', &c.pending) {
                            agg.ingest_datagram(&c.pending[..=last]);
                            c.pending.drain(..=last);
                        }
                        if c.pending.len() > MAX_TCP_LINE {
                            agg.count_drop("line_too_long");
                            c.pending.clear();
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if at_exit {
                            agg.ingest_datagram(&c.pending);
                            c.pending.clear();
                        }
                        return true;
                    }
                    Err(_) => return false,
                }
            }
        });
        reads
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}
