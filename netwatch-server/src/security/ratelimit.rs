//! Per-client request limits (API-36, D-23): a fixed one-minute window per client, opened by
//! the client's first request; request number `limit + 1` inside it is refused with the seconds
//! left until the window ends (`Retry-After`).
//!
//! A fixed window is exact about the promise ("at most N requests in the minute after the
//! first") and needs 16 bytes per client. Clients are IP addresses; IPv6 clients are grouped by
//! their /64 (one host usually owns a whole /64, so per-address limits would be free to dodge).
//! Loopback clients (127.0.0.0/8, ::1) get their own, higher limit. The table is bounded: when
//! it is full, expired windows are swept, and if it is still full new clients share a single
//! overflow window at the remote limit (a flood of source addresses cannot grow memory).
//!
//! Deterministic: time is passed in as `now` (a monotonic [`Duration`] since any origin).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// The limits, in requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per window for a non-loopback client (seeds: 100 per minute).
    pub remote: u32,
    /// Requests per window for a loopback client (seeds: 1000 per minute).
    pub loopback: u32,
    /// The window (one minute; shorter only in tests of this module).
    pub window: Duration,
    /// Most clients tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            remote: 100,
            loopback: 1000,
            window: Duration::from_secs(60),
            max_clients: 65_536,
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve it; `remaining` more requests fit in the current window.
    Allow {
        /// The limit that applies to this client.
        limit: u32,
        /// Requests left in the window after this one.
        remaining: u32,
    },
    /// Refuse it with 429; the window ends in `retry_after_secs` (at least 1).
    Deny {
        /// The limit that applies to this client.
        limit: u32,
        /// Whole seconds until the window ends, rounded up.
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Duration,
    count: u32,
}

/// Client key: an IPv4 address, or an IPv6 /64 (IPv4-mapped IPv6 counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    Ip(IpAddr),
    Overflow,
}

fn client_key(ip: IpAddr) -> ClientKey {
    match ip {
        IpAddr::V4(_) => ClientKey::Ip(ip),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return ClientKey::Ip(IpAddr::V4(v4));
            }
            if v6.is_loopback() {
                return ClientKey::Ip(ip);
            }
            let s = v6.segments();
            ClientKey::Ip(IpAddr::V6(Ipv6Addr::new(
                s[0], s[1], s[2], s[3], 0, 0, 0, 0,
            )))
        }
    }
}

/// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback.
#[must_use]
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The per-client windows.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: HashMap<ClientKey, Window>,
}

impl RateLimiter {
    /// An empty limiter.
    #[must_use]
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: HashMap::new(),
        }
    }

    /// The configured limits.
    #[must_use]
    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Number of clients currently tracked.
    #[must_use]
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    /// Counts one request of `ip` at `now` and decides. A limit of 0 disables limiting for
    /// that class of client.
    pub fn check(&mut self, ip: IpAddr, now: Duration) -> Decision {
        let limit = if is_loopback(ip) {
            self.limits.loopback
        } else {
            self.limits.remote
        };
        if limit == 0 {
            return Decision::Allow {
                limit,
                remaining: u32::MAX,
            };
        }
        let mut key = client_key(ip);
        if !self.windows.contains_key(&key) && self.windows.len() >= self.limits.max_clients {
            self.sweep(now);
            if self.windows.len() >= self.limits.max_clients {
                key = ClientKey::Overflow;
            }
        }
        let window = self.limits.window;
        let w = self.windows.entry(key).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.saturating_sub(w.start) >= window {
            *w = Window {
                start: now,
                count: 0,
            };
        }
        if w.count >= limit {
            let end = w.start + window;
            let left = end.saturating_sub(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Decision::Deny {
                limit,
                retry_after_secs: secs.max(1),
            };
        }
        w.count += 1;
        Decision::Allow {
            limit,
            remaining: limit - w.count,
        }
    }

    /// Forgets every window that has ended.
    pub fn sweep(&mut self, now: Duration) {
        let window = self.limits.window;
        self.windows
            .retain(|_, w| now.saturating_sub(w.start) < window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_101st_request_in_a_minute_is_refused() {
        let mut rl = RateLimiter::new(RateLimits::default());
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for i in 0..100u32 {
            assert_eq!(
                rl.check(ip, Duration::from_millis(u64::from(i) * 500)),
                Decision::Allow {
                    limit: 100,
                    remaining: 99 - i
                }
            );
        }
        // First request at t=0, the window ends at t=60 s; at t=50.2 s 10 s are left (9.8 up).
        assert_eq!(
            rl.check(ip, Duration::from_millis(50_200)),
            Decision::Deny {
                limit: 100,
                retry_after_secs: 10
            }
        );
        // Another client is unaffected; the window reopens after a minute.
        assert!(matches!(
            rl.check("192.0.2.8".parse().expect("ip"), s(51)),
            Decision::Allow { .. }
        ));
        assert!(matches!(
            rl.check(ip, s(60)),
            Decision::Allow { remaining: 99, .. }
        ));
    }

    #[test]
    fn loopback_has_its_own_limit() {
        let mut rl = RateLimiter::new(RateLimits::default());
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_loopback(ip));
            assert!(matches!(
                rl.check(ip, s(0)),
                Decision::Allow { limit: 1000, .. }
            ));
        }
        let v4 = "127.0.0.1".parse().expect("ip");
        // 127.0.0.1 and ::ffff:127.0.0.1 share one window: 2 used.
        for _ in 0..998 {
            assert!(matches!(rl.check(v4, s(1)), Decision::Allow { .. }));
        }
        assert!(matches!(
            rl.check(v4, s(1)),
            Decision::Deny {
                retry_after_secs: 59,
                ..
            }
        ));
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let lim = RateLimits {
            remote: 2,
            ..RateLimits::default()
        };
        let mut rl = RateLimiter::new(lim);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(matches!(rl.check(a, s(0)), Decision::Allow { .. }));
        assert!(matches!(rl.check(b, s(0)), Decision::Allow { .. }));
        assert!(matches!(rl.check(a, s(0)), Decision::Deny { .. }));
        assert!(matches!(rl.check(c, s(0)), Decision::Allow { .. }));
    }

    #[test]
    fn table_is_bounded_and_overflow_is_limited() {
        let lim = RateLimits {
            remote: 3,
            max_clients: 4,
            ..RateLimits::default()
        };
        let mut rl = RateLimiter::new(lim);
        for i in 0..4u8 {
            rl.check(IpAddr::from([10, 0, 0, i]), s(0));
        }
        assert_eq!(rl.tracked(), 4);
        // Table full: newcomers share the overflow window (3 requests between them).
        for i in 10..13u8 {
            assert!(matches!(
                rl.check(IpAddr::from([10, 0, 0, i]), s(1)),
                Decision::Allow { .. }
            ));
        }
        assert!(matches!(
            rl.check(IpAddr::from([10, 0, 0, 99]), s(1)),
            Decision::Deny { .. }
        ));
        assert_eq!(rl.tracked(), 5);
        // After the windows end, a sweep makes room again.
        assert!(matches!(
            rl.check(IpAddr::from([10, 0, 1, 1]), s(61)),
            Decision::Allow { remaining: 2, .. }
        ));
        assert_eq!(rl.tracked(), 1);
    }

    #[test]
    fn zero_disables_a_class() {
        let mut rl = RateLimiter::new(RateLimits {
            loopback: 0,
            ..RateLimits::default()
        });
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        for _ in 0..5000 {
            assert!(matches!(rl.check(ip, s(0)), Decision::Allow { .. }));
        }
    }
}
