//! Wire types and codec shared by `netwatch-capture` (the privileged helper) and
//! `netwatch-server` (the unprivileged server).
//!
//! # Layout
//!
//! * [`flow`]: [`FlowKey`] (a bidirectional 5-tuple plus VLAN in canonical order),
//!   [`Side`], [`DirCounters`], [`FlowRecord`] and [`EndReason`].
//! * [`message`]: the four messages that cross the Unix socket ([`Hello`],
//!   [`FlowBatch`], [`Ack`], [`Bye`]) and the capture statistics ([`CaptureStats`]).
//! * [`codec`]: framing. Every frame is `u32 LE length | u16 LE version | bincode body`.
//!   The length is checked against [`MAX_FRAME_LEN`] before anything is allocated, the
//!   version before anything is decoded, and the body is decoded with a byte limit.
//!   A short buffer is [`CodecError::Incomplete`], never confused with
//!   [`CodecError::Invalid`].
//!
//! The crate has no unsafe code and no I/O: it turns values into bytes and back.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod flow;
pub mod message;

pub use codec::{
    decode, encode, encode_flow_batch_into, encode_into, frame_len, CodecError, MAX_FRAME_LEN,
    PROTOCOL_VERSION,
};
pub use flow::{DirCounters, EndReason, FlowKey, FlowRecord, Side};
pub use message::{
    Ack, Bye, ByeKind, CaptureStats, FlowBatch, FlowBatchRef, Hello, MalformedCounts,
    MalformedKind, Message, SourceKind, MAGIC,
};
