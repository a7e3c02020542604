//! Reading a burst of RTP datagrams with one system call (`recvmmsg` on Linux; one
//! `recv_from` per datagram elsewhere). A camera sends a frame as a burst of packets, so one
//! wake-up and one call usually take the whole frame.
//!
//! The slots live in a per-thread buffer: a batch is handled synchronously inside one poll of
//! the receiving task, so no two tasks use it at once, and memory does not grow with streams.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per call.
pub const BATCH: usize = 32;
/// Bytes per slot: the largest UDP payload, so nothing is truncated.
const SLOT: usize = 65_536;

/// Reads up to `BATCH` datagrams that are already queued, calling `f` for each. Returns how many
/// were read; `WouldBlock` when none were (readiness is then cleared, as `try_io` does).
pub fn recv(sock: &UdpSocket, f: &mut dyn FnMut(&[u8], SocketAddr)) -> io::Result<usize> {
    sock.try_io(Interest::READABLE, || imp::recv(sock, f))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::RefCell;
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use super::{BATCH, SLOT};

    /// The source address the kernel wrote (IPv4 or IPv6).
    fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: ss_family says the storage holds a sockaddr_in, which it is large and
                // aligned enough for.
                let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::from((Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), u16::from_be(a.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                Some(
                    SocketAddrV6::new(Ipv6Addr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)
                        .into(),
                )
            }
            _ => None,
        }
    }

    /// The slots and the kernel's message headers, set up once per thread. Everything lives on
    /// the heap, so the pointers between them stay valid however the owner moves.
    struct Slots {
        buf: Box<[u8]>,
        _iovs: Box<[libc::iovec; BATCH]>,
        addrs: Box<[libc::sockaddr_storage; BATCH]>,
        msgs: Box<[libc::mmsghdr; BATCH]>,
    }

    impl Slots {
        fn new() -> Self {
            let mut buf = vec![0u8; BATCH * SLOT].into_boxed_slice();
            // SAFETY: all-zero is a valid value for these plain C structs (null pointers, zero
            // lengths); every pointer set below points into `buf`, `iovs` or `addrs`, heap
            // allocations owned by the same `Slots`, and each iovec covers its own SLOT bytes.
            let mut iovs: Box<[libc::iovec; BATCH]> = Box::new(unsafe { std::mem::zeroed() });
            let mut addrs: Box<[libc::sockaddr_storage; BATCH]> = Box::new(unsafe { std::mem::zeroed() });
            let mut msgs: Box<[libc::mmsghdr; BATCH]> = Box::new(unsafe { std::mem::zeroed() });
            let base = buf.as_mut_ptr();
            for i in 0..BATCH {
                // SAFETY: i * SLOT + SLOT <= buf.len().
                iovs[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
                iovs[i].iov_len = SLOT;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            }
            Self { buf, _iovs: iovs, addrs, msgs }
        }
    }

    thread_local! {
        static SLOTS: RefCell<Slots> = RefCell::new(Slots::new());
    }

    pub fn recv(sock: &tokio::net::UdpSocket, f: &mut dyn FnMut(&[u8], SocketAddr)) -> io::Result<usize> {
        SLOTS.with(|slots| {
            let slots = &mut *slots.borrow_mut();
            for m in slots.msgs.iter_mut() {
                // The kernel writes back the address length and flags: reset them.
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                m.msg_hdr.msg_flags = 0;
                m.msg_len = 0;
            }
            // SAFETY: msgs holds BATCH headers set up by `Slots::new`, pointing into live buffers.
            let n = unsafe {
                libc::recvmmsg(sock.as_raw_fd(), slots.msgs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            for i in 0..n {
                let len = (slots.msgs[i].msg_len as usize).min(SLOT);
                let Some(from) = to_socket_addr(&slots.addrs[i]) else { continue };
                f(&slots.buf[i * SLOT..i * SLOT + len], from);
            }
            Ok(n)
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::SocketAddr;

    pub fn recv(sock: &tokio::net::UdpSocket, f: &mut dyn FnMut(&[u8], SocketAddr)) -> io::Result<usize> {
        let mut buf = vec![0u8; super::SLOT];
        let mut n = 0;
        while n < super::BATCH {
            match sock.try_recv_from(&mut buf) {
                Ok((len, from)) => f(&buf[..len], from),
                Err(e) if n > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            n += 1;
        }
        Ok(n)
    }
}
