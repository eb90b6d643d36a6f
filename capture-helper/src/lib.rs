//! Netwatch capture helper: turns Ethernet frames into bidirectional flows.
//!
//! # Layout
//!
//! * [`source`]: the [`source::FrameSource`] trait (one borrowed [`source::Frame`] at a
//!   time), the pcap/pcapng file reader (`pcap-parser` over our own streaming buffer) and an
//!   in-memory source.
//! * [`parse`]: the checked frame parser (etherparse views): Ethernet II, VLAN tags, IPv4,
//!   IPv6 extension headers, ports; returns a [`parse::Verdict`] for any byte string.
//! * [`flow`]: the compact [`flow::RawKey`] and the fixed-capacity [`flow::FlowTable`]
//!   (open addressing, idle/active/TCP-close timeouts, counted eviction, delta draining).
//! * [`collector`]: [`collector::Collector`] = parser + table + frame accounting
//!   (`CaptureStats` buckets and malformed kinds). Time is always an argument.
//! * [`offline`]: `--read FILE` without `--connect`: merged flows as the oracle's CSV or
//!   JSON lines, plus the accounting summary.
//! * [`sys`]: the OS glue of live capture and the only `unsafe` code of the project (AF_PACKET
//!   socket, TPACKET_V3 ring, capabilities, seccomp, signals, CPU/RSS).
//! * [`live`]: ring geometry, opening one ring per capture thread, [`live::RingSource`],
//!   the capture filter (tcpdump syntax) and the default interface.
//! * [`run`]: live capture's one privileged startup (documented order) and its loop.
//! * [`export`]: the server socket client: Hello, numbered batches, bounded backlog of
//!   unacknowledged batches resent after reconnecting, Bye.
//! * [`replay`]: `--read FILE --connect SOCKET`: a capture's flows streamed to the server
//!   with the capture's own timestamps (`--pace realtime|fast`).
//! * [`cli`]: low-level flags validated into a [`cli::Mode`] (offline, replay, live).
#![deny(unsafe_code)]

pub mod cli;
pub mod collector;
pub mod export;
pub mod flow;
pub mod live;
pub mod offline;
pub mod parse;
pub mod replay;
pub mod run;
pub mod source;
pub mod sys;
