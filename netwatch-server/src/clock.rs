//! The wall clock, the one place the server reads it. Everything below takes `now` as an
//! argument (the store above all); handlers read the clock here and pass it down.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in ns since the epoch (0 before 1970, saturating far in the future).
#[must_use]
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
