//! Netwatch server.
//!
//! # Layout
//!
//! (filled in as the modules land)
#![forbid(unsafe_code)]
