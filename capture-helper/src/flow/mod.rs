//! The flow table and its compact key.
//!
//! * [`key`]: [`RawKey`], the canonical bidirectional key in a hashing-friendly layout
//!   (fixed 16-byte addresses, no enum), its order (the oracle's row order) and the
//!   conversion to the wire [`netwatch_protocol::FlowKey`].
//! * [`table`]: [`FlowTable`], a fixed-capacity open-addressing table with idle, active
//!   and TCP-close timeouts, counted eviction and delta draining.

pub mod key;
pub mod table;

pub use key::RawKey;
pub use table::{EndedRecord, FlowTable, TableConfig, TableCounters};
