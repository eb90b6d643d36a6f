//! The server's own CPU and memory, read from `/proc/self` once a second.

use std::time::Instant;

/// The latest sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostSample {
    /// CPU use of the server process over the last interval, percent of one core.
    pub cpu_percent: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// Turns cumulative CPU ticks into a percentage between calls.
#[derive(Debug)]
pub struct Sampler {
    last: Option<(Instant, u64)>,
    tick_hz: u64,
    page: u64,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// A sampler (reads the clock tick rate and page size once).
    #[must_use]
    pub fn new() -> Sampler {
        use nix::unistd::{sysconf, SysconfVar};
        let tick_hz = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(100);
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(4096);
        Sampler {
            last: None,
            tick_hz: tick_hz.max(1),
            page,
        }
    }

    /// Takes a sample; CPU is 0 on the first call.
    pub fn sample(&mut self) -> HostSample {
        let now = Instant::now();
        let ticks = read_cpu_ticks().unwrap_or(0);
        let cpu_percent = match self.last {
            Some((t0, k0)) => {
                let dt = now.duration_since(t0).as_secs_f64();
                if dt > 0.0 {
                    (ticks.saturating_sub(k0) as f64 / self.tick_hz as f64) / dt * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        HostSample {
            cpu_percent,
            rss_bytes: read_rss_pages().unwrap_or(0) * self.page,
        }
    }
}

/// utime + stime of this process, in clock ticks.
fn read_cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn read_rss_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}
