//! Operating-system glue of the live capture: the only module of the project with `unsafe`.
//!
//! Every `unsafe` block carries a `// SAFETY:` comment naming the invariant it relies on.
//! Everything here is small and mechanical; the logic that decides what to do with the bytes
//! lives in safe code above (`live`, `run`, `collector`).
//!
//! * [`tpacket`]: the TPACKET_V3 layout (constants, `tpacket_req3`) and smoltcp-style checked
//!   views over a ring block ([`tpacket::BlockView`]) and a frame header
//!   ([`tpacket::FrameHeader`]). Safe code, kept here because it mirrors the kernel ABI.
//! * [`packet`]: the AF_PACKET socket: open, TPACKET_V3, `PACKET_RX_RING`, bind, promiscuous
//!   mode, classic BPF filter, `PACKET_FANOUT`, `PACKET_STATISTICS`, poll.
//! * [`ring`]: the mmap'd ring and the block ownership hand-off with the kernel
//!   (acquire load of `block_status`, release store of `TP_STATUS_KERNEL`).
//! * [`privilege`]: capabilities, user switch, `PR_SET_NO_NEW_PRIVS`, reading them back.
//! * [`seccomp`]: compiling the reviewed allowlist (`capture-helper/seccomp/`) and applying it.
//! * [`signal`]: SIGTERM/SIGINT handlers that only set a flag (safe under seccomp).
//! * [`alloc`]: a counting global allocator for the zero-allocation tests.
//! * [`usage`]: CPU time (getrusage) and resident set size (`/proc/self/statm`, opened once).
//! * [`prefetch`]: a safe software-prefetch hint (offline mode's batched flow lookups).
#![allow(unsafe_code)]

pub mod alloc;
pub mod packet;
pub mod prefetch;
pub mod privilege;
pub mod ring;
pub mod seccomp;
pub mod signal;
pub mod tpacket;
pub mod usage;
