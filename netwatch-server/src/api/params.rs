//! Query-string parsing and validation. Every bad value is a 400 naming the parameter;
//! unknown and repeated parameters are 400s too (a typo such as `srcip=` would otherwise
//! silently return every flow).

use super::error::ApiError;
use crate::model::PROTOCOLS;
use crate::store::NS;
use chrono::DateTime;
use ipnet::IpNet;
use std::net::IpAddr;

/// Decoded `name=value` pairs of a query string.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding of one component.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// An inclusive range of ports, `(low, high)`.
pub type PortRange = (u16, u16);

impl Params {
    /// Parses a raw query string and checks every name against `allowed`.
    ///
    /// # Errors
    /// 400 for undecodable text, unknown or repeated names.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (n, v) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(n)
                .ok_or_else(|| ApiError::param(n, v, "not valid percent-encoded UTF-8"))?;
            let value = decode(v)
                .ok_or_else(|| ApiError::param(&name, v, "not valid percent-encoded UTF-8"))?;
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::unknown_param(&name, allowed));
            }
            if pairs.iter().any(|(p, _)| *p == name) {
                return Err(ApiError::param(&name, &value, "given more than once"));
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// The value of a parameter, if given.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer in `min..=max`, or `default` when absent.
    ///
    /// # Errors
    /// 400 when not an integer or out of range.
    pub fn int(&self, name: &str, min: u64, max: u64, default: u64) -> Result<u64, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: u64 = v.parse().map_err(|_| {
            ApiError::param(
                name,
                v,
                format!("must be an integer between {min} and {max}"),
            )
        })?;
        if n < min || n > max {
            return Err(ApiError::param(
                name,
                v,
                format!("must be between {min} and {max}"),
            ));
        }
        Ok(n)
    }

    /// The port filters of a flow query: `port` (one port, either side) as `(p, p)`, and
    /// `port_min`/`port_max` (a port of either side inside the inclusive range; a missing
    /// end is 0 or 65535; `port_min` above `port_max` is an empty range that matches
    /// nothing, like a time range that selects no flow, so every pair of valid integers is
    /// a valid query, as the OpenAPI document can say).
    ///
    /// # Errors
    /// 400 for a value that is not an integer 0-65535.
    pub fn ports(&self) -> Result<(Option<PortRange>, Option<PortRange>), ApiError> {
        let one = |name: &str, default: u16| -> Result<Option<u16>, ApiError> {
            if self.get(name).is_none() {
                return Ok(None);
            }
            let v = self.int(name, 0, 65535, u64::from(default))?;
            Ok(Some(u16::try_from(v).unwrap_or(default)))
        };
        let port = one("port", 0)?.map(|p| (p, p));
        let range = match (one("port_min", 0)?, one("port_max", 65535)?) {
            (None, None) => None,
            (lo, hi) => Some((lo.unwrap_or(0), hi.unwrap_or(65535))),
        };
        Ok((port, range))
    }

    /// One of `choices`, or `default` when absent.
    ///
    /// # Errors
    /// 400 for anything else.
    pub fn choice<'a>(
        &self,
        name: &str,
        choices: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        choices.iter().find(|c| **c == v).copied().ok_or_else(|| {
            ApiError::param(name, v, format!("must be one of {}", choices.join(", ")))
        })
    }

    /// An IP address or CIDR network.
    ///
    /// # Errors
    /// 400 when it is neither.
    pub fn net(&self, name: &str) -> Result<Option<IpNet>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(n) = v.parse::<IpNet>() {
            return Ok(Some(n.trunc()));
        }
        if let Ok(a) = v.parse::<IpAddr>() {
            return Ok(Some(IpNet::from(a)));
        }
        Err(ApiError::param(
            name,
            v,
            "must be an IP address or a CIDR network such as 192.168.1.0/24",
        ))
    }

    /// A protocol number (0-255) or lower-case name (see `model::PROTOCOLS`).
    ///
    /// # Errors
    /// 400 for anything else.
    pub fn protocol(&self, name: &str) -> Result<Option<u8>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            // Canonical numbers only ("6", not "006"), as the OpenAPI pattern says.
            return v
                .parse::<u8>()
                .ok()
                .filter(|n| n.to_string() == v)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::param(name, v, "protocol numbers are 0-255 without leading zeros")
                });
        }
        PROTOCOLS
            .iter()
            .find(|(_, n)| *n == v)
            .map(|(p, _)| Some(*p))
            .ok_or_else(|| {
                ApiError::param(name, v, "unknown protocol: use a number 0-255 or a lower-case name such as tcp, udp, icmp")
            })
    }

    /// An RFC 3339 / ISO 8601 date-time, as ns since the epoch (clamped to 0..=u64::MAX).
    ///
    /// # Errors
    /// 400 when it does not parse.
    pub fn time(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let t = DateTime::parse_from_rfc3339(v).map_err(|_| {
            ApiError::param(
                name,
                v,
                "must be an ISO 8601 date-time such as 2024-01-31T12:00:00Z",
            )
        })?;
        let ns =
            i128::from(t.timestamp()) * i128::from(NS) + i128::from(t.timestamp_subsec_nanos());
        Ok(Some(u64::try_from(ns.max(0)).unwrap_or(u64::MAX)))
    }

    /// A duration `<n>s`, `<n>m` or `<n>h` (`n` from 1 to 999999, no leading zero), in
    /// seconds, clamped to `max_s`.
    ///
    /// # Errors
    /// 400 when malformed.
    pub fn duration(
        &self,
        name: &str,
        default: &str,
        max_s: u64,
    ) -> Result<(u64, String), ApiError> {
        let v = self.get(name).unwrap_or(default);
        let bad = || ApiError::param(name, v, "must be a duration such as 30s, 5m or 1h");
        let Some(last) = v.chars().last() else {
            return Err(bad());
        };
        let (num, unit) = v.split_at(v.len() - last.len_utf8());
        if num.is_empty()
            || num.len() > 6
            || num.starts_with('0')
            || !num.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            _ => return Err(bad()),
        };
        Ok((secs.min(max_s), v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_checks() {
        let p = Params::parse(
            "src_ip=10.0.0.0%2F8&protocol=tcp&x=",
            &["src_ip", "protocol", "x"],
        )
        .expect("parse");
        assert_eq!(p.get("src_ip"), Some("10.0.0.0/8"));
        assert_eq!(p.protocol("protocol").expect("tcp"), Some(6));
        assert!(Params::parse("a=1&a=2", &["a"]).is_err());
        assert!(Params::parse("b=1", &["a"]).is_err());
        assert!(Params::parse("a=%zz", &["a"]).is_err());
    }

    #[test]
    fn values() {
        let p = Params::parse(
            "limit=0&port=70000&src_ip=10.0.0.0/33&protocol=foo&time_start=yesterday&d=090m&n=256",
            &[
                "limit",
                "port",
                "src_ip",
                "protocol",
                "time_start",
                "d",
                "n",
            ],
        )
        .expect("parse");
        assert!(p.int("limit", 1, 1000, 100).is_err());
        assert!(p.int("port", 0, 65535, 0).is_err());
        assert!(p.net("src_ip").is_err());
        assert!(p.protocol("protocol").is_err());
        assert!(p.time("time_start").is_err());
        assert!(p.duration("d", "5m", 3600).is_err());
        assert!(p.protocol("n").is_err());
        let ok = Params::parse(
            "src_ip=10.1.2.3/24&t=2013-01-01T00:00:00.5Z&d=1h",
            &["src_ip", "t", "d"],
        )
        .expect("parse");
        assert_eq!(
            ok.net("src_ip").expect("net").map(|n| n.to_string()),
            Some("10.1.2.0/24".into())
        );
        assert_eq!(ok.time("t").expect("t"), Some(1_356_998_400_500_000_000));
        assert_eq!(ok.duration("d", "5m", 3600).expect("d").0, 3600);
        let long = Params::parse("d=9h&p=TCP&q=006", &["d", "p", "q"]).expect("parse");
        assert_eq!(
            long.duration("d", "5m", 3600).expect("d").0,
            3600,
            "clamped to retention"
        );
        assert!(long.protocol("p").is_err());
        assert!(long.protocol("q").is_err());
        let odd = Params::parse("d=%C2%80&e=", &["d", "e"]).expect("parse");
        assert!(odd.duration("d", "5m", 3600).is_err());
        assert!(odd.duration("e", "5m", 3600).is_err());
    }
}
