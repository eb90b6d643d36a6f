//! Flow identity and per-flow counters.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One side of a canonical [`FlowKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// The smaller endpoint (`addr_a`, `port_a`).
    A,
    /// The larger endpoint (`addr_b`, `port_b`).
    B,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// A bidirectional flow identity: two endpoints in canonical order, the IP protocol
/// number and the outermost VLAN id (0 when untagged).
///
/// Canonical order: endpoint = (address, port); `A` is the smaller endpoint, IPv4 before
/// IPv6, addresses compared as big-endian bytes, then ports. This is the order of the
/// independent oracle (`oracle.py`) and is what makes both directions of a conversation
/// one key. Which side started the conversation is kept in [`FlowRecord::initiator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    /// Address of side A (the smaller endpoint).
    pub addr_a: IpAddr,
    /// Port of side A (0 for protocols without ports and for non-first fragments).
    pub port_a: u16,
    /// Address of side B.
    pub addr_b: IpAddr,
    /// Port of side B.
    pub port_b: u16,
    /// IP protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// Outermost 802.1Q/802.1ad VLAN id, 0 when untagged.
    pub vlan: u16,
}

impl FlowKey {
    /// Builds the canonical key for a packet sent from `(src, sport)` to `(dst, dport)`
    /// and returns the side the packet's *source* is on.
    ///
    /// When both endpoints are equal the packet counts as sent by side A.
    #[must_use]
    pub fn from_packet(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
        vlan: u16,
    ) -> (FlowKey, Side) {
        if (src, sport) <= (dst, dport) {
            let key = FlowKey {
                addr_a: src,
                port_a: sport,
                addr_b: dst,
                port_b: dport,
                proto,
                vlan,
            };
            (key, Side::A)
        } else {
            let key = FlowKey {
                addr_a: dst,
                port_a: dport,
                addr_b: src,
                port_b: sport,
                proto,
                vlan,
            };
            (key, Side::B)
        }
    }

    /// Address and port of one side.
    #[must_use]
    pub fn endpoint(&self, side: Side) -> (IpAddr, u16) {
        match side {
            Side::A => (self.addr_a, self.port_a),
            Side::B => (self.addr_b, self.port_b),
        }
    }

    /// True when the key is in canonical order (side A is not larger than side B) and
    /// both addresses are of the same family. Records from the wire are checked with it.
    #[must_use]
    pub fn is_canonical(&self) -> bool {
        self.addr_a.is_ipv4() == self.addr_b.is_ipv4()
            && (self.addr_a, self.port_a) <= (self.addr_b, self.port_b)
    }
}

/// Counters of one direction of a flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirCounters {
    /// Packets sent by this side.
    pub packets: u64,
    /// Bytes sent by this side: the frame length on the wire (not the captured length).
    pub bytes: u64,
    /// Union of the TCP flags (the low 8 bits of the flags byte) sent by this side.
    pub tcp_flags: u8,
}

/// Why a flow ended in the helper's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndReason {
    /// TCP FIN seen in both directions.
    Fin,
    /// TCP RST seen.
    Rst,
    /// No packet for the idle timeout.
    IdleTimeout,
    /// Open longer than the active timeout (the flow continues under a new record).
    ActiveTimeout,
    /// Pushed out of a full table.
    Evicted,
    /// The helper stopped (end of file or shutdown) while the flow was open.
    Shutdown,
}

/// A flow as the helper reports it.
///
/// In a [`crate::FlowBatch`] the counters are **deltas**: what was observed since the
/// previous batch of the same helper instance that carried this key. `first_ns` is the
/// first packet of the flow as a whole (not of the delta) and `last_ns` the latest packet.
/// In offline output the counters are totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Flow identity.
    pub key: FlowKey,
    /// The side that sent the first packet seen (for TCP: the SYN sender when the SYN
    /// without ACK was seen).
    pub initiator: Side,
    /// Timestamp of the first packet of the flow, ns since the Unix epoch.
    pub first_ns: u64,
    /// Timestamp of the latest packet, ns since the Unix epoch.
    pub last_ns: u64,
    /// Packets, bytes and TCP flags sent by side A.
    pub ab: DirCounters,
    /// Packets, bytes and TCP flags sent by side B.
    pub ba: DirCounters,
    /// Set when the flow has ended in the helper's table.
    pub end: Option<EndReason>,
}

impl FlowRecord {
    /// Total packets in both directions.
    #[must_use]
    pub fn packets(&self) -> u64 {
        self.ab.packets.saturating_add(self.ba.packets)
    }

    /// Total bytes in both directions.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.ab.bytes.saturating_add(self.ba.bytes)
    }

    /// Counters of one side.
    #[must_use]
    pub fn dir(&self, side: Side) -> &DirCounters {
        match side {
            Side::A => &self.ab,
            Side::B => &self.ba,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn both_directions_give_one_key() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let (k1, s1) = FlowKey::from_packet(a, 40000, b, 80, 6, 0);
        let (k2, s2) = FlowKey::from_packet(b, 80, a, 40000, 6, 0);
        assert_eq!(k1, k2);
        assert_eq!(s1, Side::B);
        assert_eq!(s2, Side::A);
        assert_eq!(k1.endpoint(Side::A), (b, 80));
        assert!(k1.is_canonical());
    }

    #[test]
    fn ipv4_orders_before_ipv6_and_equal_endpoints_are_side_a() {
        let v4 = IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255));
        let v6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert!(v4 < v6);
        let (k, s) = FlowKey::from_packet(v4, 1, v4, 1, 17, 0);
        assert_eq!(s, Side::A);
        assert!(k.is_canonical());
        let mixed = FlowKey {
            addr_a: v4,
            port_a: 0,
            addr_b: v6,
            port_b: 0,
            proto: 1,
            vlan: 0,
        };
        assert!(!mixed.is_canonical());
    }
}
