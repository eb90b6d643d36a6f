//! The AF_PACKET socket: every call that needs CAP_NET_RAW or talks `SOL_PACKET`.

use super::tpacket::{
    TpacketReq3, TpacketStatsV3, ETH_P_ALL, PACKET_ADD_MEMBERSHIP, PACKET_FANOUT,
    PACKET_MR_PROMISC, PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION, SOL_PACKET, TPACKET_V3,
};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// First descriptor the packet sockets are moved to (one per capture thread, at most 16);
/// the seccomp policy allows write/send only below it.
pub const PACKET_FD_BASE: RawFd = 1000;

/// One classic BPF instruction (`struct sock_filter`), as `tcpdump -ddd` prints it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    mr_ifindex: i32,
    mr_type: u16,
    mr_alen: u16,
    mr_address: [u8; 8],
}

/// An AF_PACKET, SOCK_RAW, ETH_P_ALL socket.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl PacketSocket {
    /// Opens the socket (needs CAP_NET_RAW). The protocol is 0, so nothing is queued
    /// before [`PacketSocket::bind`] selects the interface and ETH_P_ALL: no frame of another
    /// interface slips into the ring between open and bind.
    ///
    /// # Errors
    /// The `socket(2)` error: EPERM without CAP_NET_RAW.
    pub fn open() -> io::Result<Self> {
        // SAFETY: socket(2) takes no pointers; on success it returns a new descriptor that
        // nothing else owns, so wrapping it in OwnedFd (which closes it once) is sound.
        let fd = unsafe {
            let rc = cvt(libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                0,
            ))?;
            OwnedFd::from_raw_fd(rc)
        };
        Ok(PacketSocket { fd })
    }

    fn setsockopt<T>(&self, level: i32, name: i32, value: &T) -> io::Result<()> {
        let len = libc::socklen_t::try_from(size_of::<T>())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "option too large"))?;
        // SAFETY: `value` is a live reference to a `T` of exactly `len` bytes for the whole
        // call; the kernel copies it in (copy_from_user) and keeps no pointer to it.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                std::ptr::from_ref(value).cast(),
                len,
            )
        })?;
        Ok(())
    }

    /// Selects TPACKET_V3 (must precede [`PacketSocket::set_rx_ring`]).
    ///
    /// # Errors
    /// The `setsockopt(2)` error.
    pub fn set_tpacket_v3(&self) -> io::Result<()> {
        self.setsockopt(SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
    }

    /// Asks the kernel to allocate the receive ring.
    ///
    /// # Errors
    /// EINVAL for a geometry the kernel refuses (block size not a multiple of the page size,
    /// frame size not a multiple of 16, frame count mismatch), ENOMEM when it cannot allocate.
    pub fn set_rx_ring(&self, req: &TpacketReq3) -> io::Result<()> {
        self.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
    }

    /// Binds to one interface for every protocol. From here frames flow into the ring.
    ///
    /// # Errors
    /// The `bind(2)` error (ENODEV for a vanished interface, ENETDOWN is not an error here).
    pub fn bind(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value of it.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = i32::try_from(ifindex).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range")
        })?;
        let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` is a live, initialised sockaddr_ll and `len` is its size; the kernel
        // copies it during the call.
        cvt(unsafe { libc::bind(self.fd.as_raw_fd(), std::ptr::from_ref(&sll).cast(), len) })?;
        Ok(())
    }

    /// Puts the interface into promiscuous mode for as long as this socket is open
    /// (a membership: the kernel undoes it when the socket closes, even on a crash).
    ///
    /// # Errors
    /// The `setsockopt(2)` error.
    pub fn add_promisc_membership(&self, ifindex: u32) -> io::Result<()> {
        let mreq = PacketMreq {
            mr_ifindex: i32::try_from(ifindex).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range")
            })?,
            mr_type: PACKET_MR_PROMISC,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        self.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
    }

    /// Attaches a classic BPF program; the kernel checks it (sk_chk_filter) and copies it.
    ///
    /// # Errors
    /// EINVAL for a program the kernel's checker refuses; `InvalidInput` for an empty one or
    /// one over 4096 instructions (BPF_MAXINSNS), refused here before any syscall.
    pub fn attach_filter(&self, prog: &[SockFilter]) -> io::Result<()> {
        if prog.is_empty() || prog.len() > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "BPF program must have 1..=4096 instructions",
            ));
        }
        let fprog = SockFprog {
            len: u16::try_from(prog.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too long"))?,
            filter: prog.as_ptr(),
        };
        // `fprog.filter` points into `prog`, which outlives the call (setsockopt copies it).
        self.setsockopt(libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
    }

    /// Joins fanout group `group` (per network namespace, 16 bits) in `mode` (hash with
    /// defrag): the kernel spreads the interface's frames over the group's sockets.
    ///
    /// # Errors
    /// The `setsockopt(2)` error (EINVAL when the group exists with another mode).
    pub fn join_fanout(&self, group: u16, mode: u32) -> io::Result<()> {
        let arg: u32 = u32::from(group) | (mode << 16);
        self.setsockopt(SOL_PACKET, PACKET_FANOUT, &arg)
    }

    /// Reads and resets the kernel's counters (`PACKET_STATISTICS`): callers accumulate.
    ///
    /// # Errors
    /// The `getsockopt(2)` error.
    pub fn take_stats(&self) -> io::Result<TpacketStatsV3> {
        let mut st = TpacketStatsV3::default();
        let mut len = size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` is a live, writable TpacketStatsV3 and `len` holds its size; the kernel
        // writes at most `len` bytes into it and updates `len`.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                std::ptr::from_mut(&mut st).cast(),
                &raw mut len,
            )
        })?;
        Ok(st)
    }

    /// Waits up to `timeout_ms` for a retired block (POLLIN) or an error.
    ///
    /// # Errors
    /// The `poll(2)` error other than EINTR (EINTR returns `Ok(false)`: the caller checks its
    /// stop flag).
    pub fn poll_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        // SAFETY: `pfd` is one live pollfd and we pass a count of 1.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(rc > 0)
    }

    /// Moves the socket to descriptor `target` (dup3 with O_CLOEXEC, then closes the old
    /// one). The seccomp policy refuses write/send on descriptors from
    /// [`PACKET_FD_BASE`] up, so a compromised helper cannot inject frames through the
    /// packet socket it keeps for reading.
    ///
    /// # Errors
    /// The dup3 error (EBADF when `target` is over RLIMIT_NOFILE); `AlreadyExists` when
    /// `target` is already open (it would be closed silently otherwise).
    pub fn move_to_fd(self, target: RawFd) -> io::Result<Self> {
        // SAFETY: fcntl(F_GETFD) only queries whether `target` is an open descriptor.
        if unsafe { libc::fcntl(target, libc::F_GETFD) } >= 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("descriptor {target} is in use"),
            ));
        }
        // SAFETY: dup3 duplicates our open socket onto `target`, which we just checked is
        // not open (so nothing else owns it and no descriptor is silently closed); on success
        // the new descriptor is owned by nobody else, so OwnedFd may take it. The old OwnedFd
        // is dropped (closed) afterwards, exactly once.
        let fd = unsafe {
            let rc = cvt(libc::dup3(self.fd.as_raw_fd(), target, libc::O_CLOEXEC))?;
            OwnedFd::from_raw_fd(rc)
        };
        Ok(PacketSocket { fd })
    }

    /// The raw descriptor (for mmap).
    #[must_use]
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The index of a network interface (`if_nametoindex`).
///
/// # Errors
/// ENODEV when no such interface exists in this network namespace; `InvalidInput` for a name
/// with a NUL byte.
pub fn interface_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call; if_nametoindex only reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_index_and_nonsense_has_none() {
        assert!(interface_index("lo").expect("lo exists") > 0);
        assert!(interface_index("no-such-if0").is_err());
        assert!(interface_index("a\0b").is_err());
    }

    #[test]
    fn abi_sizes_match_the_kernel() {
        assert_eq!(size_of::<SockFilter>(), 8);
        assert_eq!(size_of::<TpacketReq3>(), 28);
        assert_eq!(size_of::<TpacketStatsV3>(), 12);
        assert_eq!(size_of::<PacketMreq>(), 16);
    }
}
