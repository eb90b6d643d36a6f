//! Netwatch capture helper: turns frames into bidirectional flows.
//!
//! # Layout
//!
//! (filled in as the modules land)
#![deny(unsafe_code)]
