//! CPU time and resident set size of the helper, readable under seccomp.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Reads `/proc/self/statm` without opening it again: the file is opened once before seccomp
/// (which allows `pread64` but no `open`) and re-read at offset 0.
#[derive(Debug)]
pub struct Usage {
    statm: Option<File>,
    page_size: u64,
}

/// One sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// CPU time in user mode, ns (all threads).
    pub user_ns: u64,
    /// CPU time in kernel mode, ns (all threads).
    pub system_ns: u64,
    /// Resident set size, bytes (0 when /proc is unavailable).
    pub rss_bytes: u64,
}

impl Usage {
    /// Opens `/proc/self/statm` (if /proc is mounted) and reads the page size.
    #[must_use]
    pub fn open() -> Self {
        // SAFETY: sysconf takes no pointers.
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Usage {
            statm: File::open("/proc/self/statm").ok(),
            page_size: u64::try_from(ps).unwrap_or(4096),
        }
    }

    /// Takes a sample (getrusage + pread of statm).
    #[must_use]
    pub fn sample(&self) -> Sample {
        let mut s = Sample::default();
        if let Ok(r) = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
            s.user_ns = tv_ns(r.user_time());
            s.system_ns = tv_ns(r.system_time());
        }
        if let Some(f) = &self.statm {
            let mut buf = [0u8; 128];
            if let Ok(n) = f.read_at(&mut buf, 0) {
                s.rss_bytes =
                    parse_statm_resident(&buf[..n]).map_or(0, |p| p.saturating_mul(self.page_size));
            }
        }
        s
    }
}

fn tv_ns(tv: nix::sys::time::TimeVal) -> u64 {
    let sec = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let usec = u64::try_from(tv.tv_usec()).unwrap_or(0);
    sec.saturating_mul(1_000_000_000)
        .saturating_add(usec.saturating_mul(1000))
}

/// The second field of statm (resident pages).
fn parse_statm_resident(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b)
        .ok()?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_statm_and_samples_this_process() {
        assert_eq!(parse_statm_resident(b"1000 250 30 4 0 50 0\n"), Some(250));
        assert_eq!(parse_statm_resident(b"garbage"), None);
        let u = Usage::open();
        let s = u.sample();
        assert!(s.rss_bytes > 0);
    }
}
