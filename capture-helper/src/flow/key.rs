//! The compact flow key used inside the helper.

use crate::parse::Packet;
use netwatch_protocol::{FlowKey, Side};
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A canonical bidirectional flow key: side A is the smaller endpoint (address bytes, then
/// port), IPv4 addresses use the first 4 bytes of the arrays. 40 bytes, no padding, cheap
/// to hash and compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct RawKey {
    /// Address of side A.
    pub addr_a: [u8; 16],
    /// Address of side B.
    pub addr_b: [u8; 16],
    /// Port of side A.
    pub port_a: u16,
    /// Port of side B.
    pub port_b: u16,
    /// Outermost VLAN id (0 untagged).
    pub vlan: u16,
    /// IP protocol number.
    pub proto: u8,
    /// 1 for IPv6, 0 for IPv4 (a byte, not a bool, so every bit pattern is a valid key).
    pub v6: u8,
}

impl RawKey {
    /// The key of a parsed packet and the side its source is on. Equal endpoints: side A.
    #[inline]
    #[must_use]
    pub fn from_packet(p: &Packet) -> (RawKey, Side) {
        let (key, side, _) = Self::from_packet_words(p);
        (key, side)
    }

    /// [`RawKey::from_packet`] plus the key's [`RawKey::words`], computed from the same
    /// values rather than read back from the stored key (a wide load over the narrow stores
    /// of the port and protocol fields would wait for them to retire: a store-forwarding
    /// stall on every packet).
    #[inline(always)]
    #[must_use]
    pub fn from_packet_words(p: &Packet) -> (RawKey, Side, [u64; 5]) {
        let v6 = u8::from(p.v6);
        // Big-endian 128-bit numbers order as the bytes do: one comparison instead of a
        // `memcmp` call per packet.
        let src = (u128::from_be_bytes(p.src), p.sport);
        let dst = (u128::from_be_bytes(p.dst), p.dport);
        let (addr_a, addr_b, port_a, port_b, side) = if src <= dst {
            (p.src, p.dst, p.sport, p.dport, Side::A)
        } else {
            (p.dst, p.src, p.dport, p.sport, Side::B)
        };
        let key = RawKey {
            addr_a,
            addr_b,
            port_a,
            port_b,
            vlan: p.vlan,
            proto: p.proto,
            v6,
        };
        let words = [
            half(&addr_a, 0),
            half(&addr_a, 8),
            half(&addr_b, 0),
            half(&addr_b, 8),
            tail_word(port_a, port_b, p.vlan, p.proto, v6),
        ];
        (key, side, words)
    }

    /// The key as five 64-bit words (for hashing): the two halves of each address, then
    /// ports, VLAN, protocol and family in one word.
    #[inline]
    #[must_use]
    pub fn words(&self) -> [u64; 5] {
        [
            half(&self.addr_a, 0),
            half(&self.addr_a, 8),
            half(&self.addr_b, 0),
            half(&self.addr_b, 8),
            tail_word(self.port_a, self.port_b, self.vlan, self.proto, self.v6),
        ]
    }

    /// Address of side A as an [`IpAddr`].
    #[must_use]
    pub fn ip_a(&self) -> IpAddr {
        to_ip(self.v6 != 0, &self.addr_a)
    }

    /// Address of side B as an [`IpAddr`].
    #[must_use]
    pub fn ip_b(&self) -> IpAddr {
        to_ip(self.v6 != 0, &self.addr_b)
    }

    /// The wire key. The canonical order is the same (IPv4 keys never mix with IPv6).
    #[must_use]
    pub fn to_flow_key(&self) -> FlowKey {
        FlowKey {
            addr_a: self.ip_a(),
            port_a: self.port_a,
            addr_b: self.ip_b(),
            port_b: self.port_b,
            proto: self.proto,
            vlan: self.vlan,
        }
    }

    /// The compact key of a wire key (`None` when the families differ).
    #[must_use]
    pub fn from_flow_key(k: &FlowKey) -> Option<RawKey> {
        let (v6, a, b) = match (k.addr_a, k.addr_b) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
                x[..4].copy_from_slice(&a.octets());
                y[..4].copy_from_slice(&b.octets());
                (0, x, y)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (1, a.octets(), b.octets()),
            _ => return None,
        };
        Some(RawKey {
            addr_a: a,
            addr_b: b,
            port_a: k.port_a,
            port_b: k.port_b,
            vlan: k.vlan,
            proto: k.proto,
            v6,
        })
    }
}

/// Eight bytes of an address from `at`, native order.
#[inline(always)]
fn half(b: &[u8; 16], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(x)
}

/// The last hash word of a key.
#[inline(always)]
fn tail_word(port_a: u16, port_b: u16, vlan: u16, proto: u8, v6: u8) -> u64 {
    u64::from(port_a)
        | u64::from(port_b) << 16
        | u64::from(vlan) << 32
        | u64::from(proto) << 48
        | u64::from(v6) << 56
}

fn to_ip(v6: bool, b: &[u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// The oracle's row order: family, address A, port A, address B, port B, protocol, VLAN.
impl Ord for RawKey {
    fn cmp(&self, o: &Self) -> Ordering {
        (
            self.v6,
            self.addr_a,
            self.port_a,
            self.addr_b,
            self.port_b,
            self.proto,
            self.vlan,
        )
            .cmp(&(
                o.v6, o.addr_a, o.port_a, o.addr_b, o.port_b, o.proto, o.vlan,
            ))
    }
}

impl PartialOrd for RawKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
