//! The UDP listener: a socket with a large receive buffer, read with a short timeout so the
//! loop can flush on time and notice shutdown.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Receive buffer asked for (the kernel caps it at `net.core.rmem_max`; as root
/// `SO_RCVBUFFORCE` is tried first).
pub const RECEIVE_BUFFER_BYTES: usize = 8 << 20;

/// A bound StatsD UDP socket and the receive buffer the kernel granted.
#[derive(Debug)]
pub struct UdpListener {
    /// The socket.
    pub socket: UdpSocket,
    /// Bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// `SO_RCVBUF` as read back (Linux reports double the usable size).
    pub granted_receive_buffer: usize,
}

/// Bind `addr` for StatsD. The error names the address.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpListener> {
    let socket =
        UdpSocket::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("binding StatsD socket {addr}: {e}")))?;
    let fd = socket.as_raw_fd();
    let want = RECEIVE_BUFFER_BYTES as libc::c_int;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: fd is a live socket owned by `socket`; the option value points to a c_int
        // that outlives the call, and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&want as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            break;
        }
    }
    let mut granted: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: as above; `granted` and `len` are valid for writes of their sizes.
    let rc = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, (&mut granted as *mut libc::c_int).cast(), &mut len)
    };
    let granted_receive_buffer = if rc == 0 { granted.max(0) as usize } else { 0 };
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    let local_addr = socket.local_addr()?;
    Ok(UdpListener { socket, local_addr, granted_receive_buffer })
}

/// Datagrams the kernel dropped for this socket because its receive buffer was full (the
/// `drops` column of `/proc/net/udp{,6}`, found by the socket's inode). `None` where the
/// table is not readable. Unix datagram senders see `EAGAIN` instead of silent drops.
pub fn kernel_drops(socket: &UdpSocket) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?.ino();
    let needle = inode.to_string();
    ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(9) == Some(&needle.as_str())).then(|| cols.last()?.parse().ok()).flatten()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_socket_has_no_kernel_drops() {
        let l = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(kernel_drops(&l.socket), Some(0));
        assert!(l.granted_receive_buffer > 0);
    }
}
