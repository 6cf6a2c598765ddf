//! Every StatsD input the receive thread reads: the UDP socket, an optional Unix datagram
//! socket and an optional TCP listener with its connections (newline-delimited), all
//! non-blocking and waited on together with `poll(2)`, so one thread owns the aggregator.
//!
//! ## Failure modes
//! A TCP line longer than [`MAX_TCP_LINE`] is dropped whole, up to its newline, and counted
//! (`line_too_long`); each connection gets [`PER_CONNECTION_READS`] reads per burst, so one
//! fast sender cannot starve the others; a connection past [`MAX_TCP_CONNECTIONS`] is refused
//! and counted; a TCP stream that ends without a final newline still has its last line taken.
//! A Unix datagram larger than the read buffer is dropped whole and counted (`truncated`).
//! The Unix socket file is removed on exit; a stale one left by a killed agent is replaced, a
//! live one is refused, and a path that is not a socket is never touched.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::aggregate::Aggregator;
use super::listener::{BatchReceiver, UdpListener, bind_udp};

/// Longest TCP line: a longer one is dropped whole, up to its newline (`line_too_long`).
pub const MAX_TCP_LINE: usize = 64 * 1024;
/// Reads one TCP connection gets per burst, so a fast sender cannot starve the others (or
/// the flush).
pub const PER_CONNECTION_READS: usize = 4;
/// Most TCP connections at once.
pub const MAX_TCP_CONNECTIONS: usize = 256;

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// The start of a line whose newline has not arrived.
    pending: Vec<u8>,
    /// Inside a line that was too long: everything up to its newline is dropped.
    discarding: bool,
}

impl Conn {
    /// Take the complete lines of `data` (after what is pending), keep an incomplete tail.
    fn take(&mut self, mut data: &[u8], agg: &mut Aggregator) {
        if self.discarding {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.discarding = false;
                    data = &data[i + 1..];
                }
                None => return,
            }
        }
        while let Some(i) = memchr::memchr(b'\n', data) {
            let line = &data[..=i];
            if self.pending.len() + line.len() > MAX_TCP_LINE {
                agg.count_drop("line_too_long");
            } else if self.pending.is_empty() {
                agg.ingest_datagram(line);
            } else {
                self.pending.extend_from_slice(line);
                agg.ingest_datagram(&self.pending);
            }
            self.pending.clear();
            data = &data[i + 1..];
        }
        if self.pending.len() + data.len() > MAX_TCP_LINE {
            agg.count_drop("line_too_long");
            self.pending.clear();
            self.discarding = true;
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    /// The stream ended (or the agent stops): its last line may lack its newline.
    fn end(&mut self, agg: &mut Aggregator) {
        if !self.discarding && !self.pending.is_empty() {
            agg.ingest_datagram(&self.pending);
        }
        self.pending.clear();
    }

    /// Read up to [`PER_CONNECTION_READS`] times; false when the connection is done.
    fn read(&mut self, buf: &mut [u8], agg: &mut Aggregator, reads: &mut usize, at_exit: bool) -> bool {
        for _ in 0..PER_CONNECTION_READS {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.end(agg);
                    return false;
                }
                Ok(n) => {
                    *reads += 1;
                    self.take(&buf[..n], agg);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if at_exit {
                        self.end(agg);
                    }
                    return true;
                }
                Err(_) => return false,
            }
        }
        true
    }
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
    use std::os::unix::fs::FileTypeExt as _;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "binding StatsD socket {}: the path exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
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

    /// The fullest datagram socket's receive queue, as a fraction of what it may hold before
    /// the kernel drops; `None` where the kernel does not say.
    pub fn fullest_queue(&self) -> Option<f64> {
        std::iter::once(self.udp.socket.as_raw_fd())
            .chain(self.unix.as_ref().map(|(s, _)| s.as_raw_fd()))
            .filter_map(super::listener::queue_fill)
            .filter(|&(_, room)| room > 0)
            .map(|(held, room)| f64::from(held) / f64::from(room))
            .reduce(f64::max)
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
                    agg.ingest_batch((0..n).map(|i| self.batch.datagram(i)));
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
                match recv_datagram(sock, buf) {
                    Ok(Some(n)) if n <= buf.len() => agg.ingest_datagram(&buf[..n]),
                    // Larger than the buffer: cut, so dropped whole rather than parsed cut.
                    Ok(Some(_)) => agg.count_drop("truncated"),
                    Ok(None) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
                reads += 1;
            }
        }
        if let Some(l) = &self.tcp {
            while let Ok((stream, _)) = l.accept() {
                if self.conns.len() >= MAX_TCP_CONNECTIONS {
                    agg.count_drop("tcp_connection_limit");
                    continue;
                }
                if stream.set_nonblocking(true).is_ok() {
                    self.conns.push(Conn { stream, pending: Vec::new(), discarding: false });
                }
            }
        }
        self.conns.retain_mut(|c| c.read(buf, agg, &mut reads, at_exit));
        reads
    }
}

/// One datagram from a Unix socket, without blocking: its real length (which may exceed
/// `buf`: the kernel cut it), or `None` when there is none.
fn recv_datagram(sock: &UnixDatagram, buf: &mut [u8]) -> io::Result<Option<usize>> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call;
    // the descriptor is owned by `sock`. MSG_TRUNC makes recv return the datagram's length.
    let n = unsafe {
        libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_TRUNC)
    };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) }
}

impl Drop for Sources {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}
