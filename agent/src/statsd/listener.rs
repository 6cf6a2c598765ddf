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
    // Only the table of the socket's family (each read walks every UDP socket of the host).
    let table = match socket.local_addr().ok()? {
        SocketAddr::V4(_) => "/proc/net/udp",
        SocketAddr::V6(_) => "/proc/net/udp6",
    };
    [table].iter().find_map(|table| {
        let text = std::fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(9) == Some(&needle.as_str())).then(|| cols.last()?.parse().ok()).flatten()
        })
    })
}

/// How full a datagram socket's receive queue is: the bytes it holds, as the kernel counts
/// them (each datagram with its buffer's overhead), and the most it may hold before it drops
/// (`SO_MEMINFO`, Linux 4.6 on). `None` where the kernel does not say.
#[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm"))]
pub fn queue_fill(fd: std::os::fd::RawFd) -> Option<(u32, u32)> {
    // Its number in the generic socket options (a few architectures, such as MIPS and
    // SPARC, number it otherwise: there the version below says nothing).
    const SO_MEMINFO: libc::c_int = 55;
    // SK_MEMINFO_VARS counters; newer kernels may write fewer, never more than asked.
    let mut info = [0u32; 9];
    let mut len = size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is valid for writes of `len` bytes, which the call is told; the
    // descriptor is the caller's live socket.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    let got = |i: libc::c_int| (len as usize >= (i as usize + 1) * 4).then(|| info[i as usize]);
    Some((got(libc::SK_MEMINFO_RMEM_ALLOC)?, got(libc::SK_MEMINFO_RCVBUF)?))
}

/// [`queue_fill`] where `SO_MEMINFO` has another number: the pauses stay at their shortest.
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm")))]
pub fn queue_fill(_fd: std::os::fd::RawFd) -> Option<(u32, u32)> {
    None
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

    #[test]
    fn a_queue_fills_as_datagrams_wait_and_empties_as_they_are_read() {
        let l = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let (empty, room) = queue_fill(l.socket.as_raw_fd()).expect("SO_MEMINFO on Linux");
        assert_eq!(empty, 0);
        assert_eq!(room as usize, l.granted_receive_buffer, "the room is SO_RCVBUF's");
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            tx.send_to(&[b'x'; 1400], l.local_addr).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let (held, _) = queue_fill(l.socket.as_raw_fd()).unwrap();
        assert!(held >= 10 * 1400, "ten datagrams and their overhead: {held}");
        let mut buf = [0; 2048];
        for _ in 0..10 {
            l.socket.recv(&mut buf).unwrap();
        }
        assert_eq!(queue_fill(l.socket.as_raw_fd()).unwrap().0, 0);
    }
}

/// Datagrams fetched per `recvmmsg(2)` call.
pub const BATCH: usize = 64;
/// Receive buffer per datagram; a larger datagram is truncated by the kernel and dropped
/// whole (counted as `truncated`) rather than parsed with a cut line.
pub const DATAGRAM_BYTES: usize = 9 * 1024;

/// Batched receives: up to [`BATCH`] datagrams per system call into preallocated buffers.
#[derive(Debug)]
pub struct BatchReceiver {
    bufs: Vec<u8>,
    lens: Vec<usize>,
    truncated: Vec<bool>,
}

impl Default for BatchReceiver {
    fn default() -> Self {
        Self { bufs: vec![0; BATCH * DATAGRAM_BYTES], lens: vec![0; BATCH], truncated: vec![false; BATCH] }
    }
}

impl BatchReceiver {
    /// Receive what is ready without blocking (retrying on EINTR); returns how many
    /// datagrams arrived (0 when none). `WouldBlock` is `Ok(0)`.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut iovecs: Vec<libc::iovec> = self
            .bufs
            .chunks_exact_mut(DATAGRAM_BYTES)
            .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() })
            .collect();
        // SAFETY: mmsghdr is plain data; all-zero is a valid value (null pointers, zero lengths).
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (m, iov) in msgs.iter_mut().zip(iovecs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
        loop {
            // SAFETY: `msgs` holds BATCH headers, each pointing at one iovec that points into
            // `self.bufs`; all of them live and are not moved until the call returns. The fd
            // is owned by `socket`.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                let n = n as usize;
                for (i, m) in msgs.iter().take(n).enumerate() {
                    self.lens[i] = (m.msg_len as usize).min(DATAGRAM_BYTES);
                    self.truncated[i] = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                }
                return Ok(n);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(err),
            }
        }
    }

    /// Datagram `i` of the last batch, or `None` when it was truncated.
    pub fn datagram(&self, i: usize) -> Option<&[u8]> {
        if self.truncated[i] {
            return None;
        }
        Some(&self.bufs[i * DATAGRAM_BYTES..i * DATAGRAM_BYTES + self.lens[i]])
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn receives_several_datagrams_per_call_and_flags_truncation() {
        let l = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        l.socket.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5 {
            tx.send_to(format!("m:{i}|c").as_bytes(), l.local_addr).unwrap();
        }
        tx.send_to(&vec![b'x'; DATAGRAM_BYTES + 100], l.local_addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut b = BatchReceiver::default();
        let n = b.recv(&l.socket).unwrap();
        assert_eq!(n, 6);
        assert_eq!(b.datagram(0), Some(&b"m:0|c"[..]));
        assert_eq!(b.datagram(4), Some(&b"m:4|c"[..]));
        assert_eq!(b.datagram(5), None, "an oversized datagram is not parsed cut");
        assert_eq!(b.recv(&l.socket).unwrap(), 0, "nothing left: WouldBlock is Ok(0)");
    }
}
