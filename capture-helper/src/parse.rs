//! Frame parser: Ethernet II bytes in, a flow tuple or an accounting verdict out.
//!
//! Every byte is untrusted. The parser reads through checked views only (etherparse's
//! `Ethernet2HeaderSlice`, `SingleVlanHeaderSlice` and `Ipv6HeaderSlice`, and `get()` on
//! slices for the few fields read directly), allocates nothing, and returns a [`Verdict`]
//! for every input, including the empty one. It never panics.
//!
//! # Rules (those of the oracle, `tests/fixtures/tools/oracle.py`, i.e. of tshark)
//!
//! * Ethernet II only. Fewer than 14 bytes: [`Verdict::Truncated`] (`ethernet_truncated`).
//!   An ethertype <= 1500 is an 802.3 length (LLC, STP, CDP, ...): [`Verdict::NonIp`].
//! * Leading 802.1Q (0x8100), 802.1ad (0x88A8) and old QinQ (0x9100) tags are skipped; the
//!   key's VLAN is the VID of the outermost tag (0 when untagged, so a VID-0 priority tag
//!   equals untagged). A tag cut short: [`Verdict::Truncated`] (`vlan_truncated`); a tag
//!   followed by a length (LLC inside a VLAN): [`Verdict::NonIp`].
//! * Ethertype 0x0800 must hold an IPv4 header as tshark decodes it: version 4, at least
//!   20 bytes captured, IHL >= 5 and a total length of 0 (TSO: the frame's length is used)
//!   or >= the header length. Otherwise [`Verdict::IpInvalid`] (`ipv4_invalid`). The
//!   checksum is not checked, and options may be cut (tshark decodes addresses first).
//!   We read IPv4 through our own view because etherparse's `Ipv4HeaderSlice` is stricter
//!   (it needs every option byte and refuses a total length of 0).
//! * Ethertype 0x86DD must hold a version-6 header with all 40 bytes captured
//!   (etherparse's `Ipv6HeaderSlice`), else [`Verdict::IpInvalid`] (`ipv6_invalid`).
//! * Everything else (ARP, LLDP, MPLS, PPPoE, MACsec, ...) is [`Verdict::NonIp`], even when
//!   IP is inside: only the outermost IP header keys a flow.
//! * IPv6: the next-header chain is followed through Hop-by-Hop (0), Routing (43),
//!   Fragment (44) and Destination Options (60) only. If the chain is cut, `proto` is the
//!   last header type reached (`ipv6_extension_truncated`).
//! * Ports are read for TCP, UDP, SCTP and DCCP when their 4 port bytes are captured (and
//!   lie inside the IP datagram) right after the outermost IP header and its extension
//!   headers; otherwise 0/0 (`transport_truncated` when the header was expected). Every
//!   other protocol (ICMP, ICMPv6, GRE, IP-in-IP, ESP, ...) has ports 0/0.
//! * A non-first fragment (IPv4 offset > 0, or an IPv6 fragment header with offset > 0)
//!   keeps addresses, protocol and VLAN, with ports 0/0. No reassembly.
//! * `ip_len` is the IPv4 total length or 40 + the IPv6 payload length of the outermost
//!   header (what the oracle's `ipbytes_*` columns sum).

use etherparse::{Ethernet2HeaderSlice, Ipv6HeaderSlice, SingleVlanHeaderSlice};
use netwatch_protocol::MalformedKind;

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// Largest value of the Ethernet type/length field that is a length (IEEE 802.3).
pub const MAX_8023_LEN: u16 = 1500;

/// IP protocol numbers the parser reads ports for.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// DCCP.
pub const PROTO_DCCP: u8 = 33;
/// SCTP.
pub const PROTO_SCTP: u8 = 132;

const ETH_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const IPV4_MIN_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// Field offsets of the IPv4 header (smoltcp style: named byte positions).
mod ipv4_field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTO: usize = 9;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Offset of the flags byte in a TCP header.
const TCP_FLAGS: usize = 13;

/// What a frame is, for the flow table and the accounting buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An IP packet that belongs to a flow.
    Flow(Packet),
    /// Not IP (ARP, LLDP, 802.3/LLC, MPLS, PPPoE, ...).
    NonIp,
    /// Ethertype IPv4/IPv6 but the IP header is not decodable.
    IpInvalid(MalformedKind),
    /// Cut inside the Ethernet header or a VLAN tag: too short to classify.
    Truncated(MalformedKind),
}

/// The flow-relevant facts of one IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    /// IPv6 (true) or IPv4 (false).
    pub v6: bool,
    /// Source address; IPv4 uses the first 4 bytes, the rest are 0.
    pub src: [u8; 16],
    /// Destination address, same layout.
    pub dst: [u8; 16],
    /// Source port (0 when none).
    pub sport: u16,
    /// Destination port (0 when none).
    pub dport: u16,
    /// IP protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Outermost VLAN id, 0 when untagged.
    pub vlan: u16,
    /// TCP flags byte when the TCP header's flags were captured, else 0.
    pub tcp_flags: u8,
    /// IPv4 total length / IPv6 40 + payload length.
    pub ip_len: u32,
    /// A fragment other than the first.
    pub nonfirst_fragment: bool,
    /// A header after the IP header that was expected but cut short.
    pub cut: Option<MalformedKind>,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP | PROTO_DCCP)
}

/// Classifies one Ethernet II frame. `wire_len` is the frame's length on the wire (used
/// only for an IPv4 total length of 0, as tshark does).
#[must_use]
#[inline]
pub fn parse_ethernet(data: &[u8], wire_len: u32) -> Verdict {
    if let Some(p) = fast_ipv4(data) {
        return Verdict::Flow(p);
    }
    parse_ethernet_general(data, wire_len)
}

/// The common case, decided in a few checked reads: Ethernet II with at most one 802.1Q
/// tag, an option-less IPv4 header (IHL 5) with a total length >= 20, not a fragment after
/// the first, carrying TCP or UDP whose ports (and, for TCP, flags) were captured inside
/// the datagram. `None` for anything else, which [`parse_ethernet_general`] then decides.
/// Whenever this returns a packet, it is the one the general parser returns (a proptest
/// in `tests/robustness.rs` compares the two on arbitrary and mutated frames).
#[inline(always)]
pub(crate) fn fast_ipv4(data: &[u8]) -> Option<Packet> {
    let (vlan, ip) = match be16(data, 12)? {
        ETHERTYPE_IPV4 => (0, data.get(ETH_HEADER_LEN..)?),
        0x8100 if be16(data, 16)? == ETHERTYPE_IPV4 => (
            be16(data, 14)? & 0x0fff,
            data.get(ETH_HEADER_LEN + VLAN_TAG_LEN..)?,
        ),
        _ => return None,
    };
    let hdr: &[u8; IPV4_MIN_HEADER_LEN] = ip.get(..IPV4_MIN_HEADER_LEN)?.try_into().ok()?;
    if hdr[ipv4_field::VER_IHL] != 0x45 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([
        hdr[ipv4_field::TOTAL_LEN],
        hdr[ipv4_field::TOTAL_LEN + 1],
    ]));
    let frag =
        u16::from_be_bytes([hdr[ipv4_field::FLAGS_FRAG], hdr[ipv4_field::FLAGS_FRAG + 1]]) & 0x1fff;
    let proto = hdr[ipv4_field::PROTO];
    // Transport bytes needed: the ports, plus the flags byte for TCP.
    let need = match proto {
        PROTO_TCP => TCP_FLAGS + 1,
        PROTO_UDP => 4,
        _ => return None,
    };
    if total < IPV4_MIN_HEADER_LEN || frag != 0 {
        return None;
    }
    let limit = ip.len().min(total);
    let l4 = ip.get(IPV4_MIN_HEADER_LEN..limit)?;
    if l4.len() < need {
        return None;
    }
    let mut pkt = Packet {
        v6: false,
        proto,
        vlan,
        ip_len: u32::try_from(total).ok()?,
        sport: be16(l4, 0)?,
        dport: be16(l4, 2)?,
        tcp_flags: if proto == PROTO_TCP {
            *l4.get(TCP_FLAGS)?
        } else {
            0
        },
        ..Packet::default()
    };
    // Each address written whole (16 bytes from one integer, the 4 address bytes first)
    // rather than 4 bytes into a zeroed array: the key is read back in 8- and 16-byte words
    // right after, and a wide load over narrower stores stalls store forwarding.
    let v4 = |at: usize| {
        let b = [hdr[at], hdr[at + 1], hdr[at + 2], hdr[at + 3]];
        u128::from(u32::from_le_bytes(b)).to_le_bytes()
    };
    pkt.src = v4(ipv4_field::SRC);
    pkt.dst = v4(ipv4_field::DST);
    Some(pkt)
}

/// [`parse_ethernet`] without the fast path: every rule, every frame.
#[must_use]
#[inline(never)]
pub fn parse_ethernet_general(data: &[u8], wire_len: u32) -> Verdict {
    let Ok(eth) = Ethernet2HeaderSlice::from_slice(data) else {
        return Verdict::Truncated(MalformedKind::EthernetTruncated);
    };
    let mut ether_type = eth.ether_type().0;
    let mut off = ETH_HEADER_LEN;
    let mut vlan: Option<u16> = None;
    loop {
        if ether_type <= MAX_8023_LEN {
            return Verdict::NonIp;
        }
        if !matches!(ether_type, 0x8100 | 0x88A8 | 0x9100) {
            break;
        }
        let Some(rest) = data.get(off..) else {
            return Verdict::Truncated(MalformedKind::VlanTruncated);
        };
        let Ok(tag) = SingleVlanHeaderSlice::from_slice(rest) else {
            return Verdict::Truncated(MalformedKind::VlanTruncated);
        };
        if vlan.is_none() {
            vlan = Some(tag.vlan_identifier().value());
        }
        ether_type = tag.ether_type().0;
        off += VLAN_TAG_LEN;
    }
    let vlan = vlan.unwrap_or(0);
    let payload = data.get(off..).unwrap_or(&[]);
    let reported = (wire_len as usize).saturating_sub(off);
    match ether_type {
        ETHERTYPE_IPV4 => parse_ipv4(payload, reported, vlan),
        ETHERTYPE_IPV6 => parse_ipv6(payload, vlan),
        _ => Verdict::NonIp,
    }
}

/// IPv4 header at the start of `p`; `reported` is the wire length from there on.
fn parse_ipv4(p: &[u8], reported: usize, vlan: u16) -> Verdict {
    let invalid = Verdict::IpInvalid(MalformedKind::Ipv4Invalid);
    let (Some(hdr), Some(&ver_ihl)) = (p.get(..IPV4_MIN_HEADER_LEN), p.get(ipv4_field::VER_IHL))
    else {
        return invalid;
    };
    if ver_ihl >> 4 != 4 {
        return invalid;
    }
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ihl < IPV4_MIN_HEADER_LEN {
        return invalid;
    }
    let total = usize::from(u16::from_be_bytes([
        hdr[ipv4_field::TOTAL_LEN],
        hdr[ipv4_field::TOTAL_LEN + 1],
    ]));
    let ip_len = if total == 0 {
        // TCP segmentation offload: tshark takes the datagram to be the rest of the frame.
        reported
    } else if total < ihl {
        return invalid;
    } else {
        total
    };
    // The datagram ends at its total length (tshark trims the buffer to it) or at the end
    // of the captured bytes, whichever comes first.
    let limit = p.len().min(ip_len);
    let mut route_dst: Option<&[u8]> = None;
    if ihl > IPV4_MIN_HEADER_LEN {
        // tshark reads the destination only after looking for a loose/strict source-route
        // option; with one, the flow's destination is the route's final hop. An option
        // byte the walk needs but cannot read ends the dissection before the destination.
        let opts = p.get(IPV4_MIN_HEADER_LEN..limit).unwrap_or(&[]);
        match source_route_offset(opts, ihl - IPV4_MIN_HEADER_LEN) {
            Some(0) => {}
            // The route's final hop is reported only when the whole header was captured.
            Some(n) if limit >= ihl => {
                route_dst = p.get(ipv4_field::DST + n..ipv4_field::DST + n + 4)
            }
            Some(_) | None => return invalid,
        }
    }
    let frag =
        u16::from_be_bytes([hdr[ipv4_field::FLAGS_FRAG], hdr[ipv4_field::FLAGS_FRAG + 1]]) & 0x1fff;
    let mut pkt = Packet {
        v6: false,
        proto: hdr[ipv4_field::PROTO],
        vlan,
        ip_len: u32::try_from(ip_len).unwrap_or(u32::MAX),
        nonfirst_fragment: frag != 0,
        ..Packet::default()
    };
    pkt.src[..4].copy_from_slice(&hdr[ipv4_field::SRC..ipv4_field::SRC + 4]);
    pkt.dst[..4].copy_from_slice(route_dst.unwrap_or(&hdr[ipv4_field::DST..ipv4_field::DST + 4]));
    if !pkt.nonfirst_fragment {
        transport(&mut pkt, p, ihl, limit);
    }
    Verdict::Flow(pkt)
}

/// Walks IPv4 options as tshark's `get_dst_offset` does: `Some(0)` when there is no usable
/// loose/strict source route, `Some(n)` when there is one (the destination is then taken
/// from it), `None` when a byte the walk needs was not captured.
fn source_route_offset(opts: &[u8], optlen: usize) -> Option<usize> {
    const EOL: u8 = 0;
    const NOP: u8 = 1;
    const LSRR: u8 = 131;
    const SSRR: u8 = 137;
    let mut off = 0usize;
    let mut left = optlen;
    while left > 0 {
        let opt = *opts.get(off)?;
        left -= 1;
        if opt != EOL && opt != NOP {
            if left == 0 {
                return Some(0);
            }
            let len = usize::from(*opts.get(off + 1)?);
            left -= 1;
            if len < 2 || len - 2 > left {
                return Some(0);
            }
            if opt == LSRR || opt == SSRR {
                let ptr = usize::from(*opts.get(off + 2)?);
                if ptr < 4 || ptr & 3 != 0 || ptr > len {
                    return Some(0);
                }
                return Some(off + len);
            }
            off += len;
            left -= len - 2;
        } else {
            off += 1;
        }
        if opt == EOL {
            return Some(0);
        }
    }
    Some(0)
}

/// IPv6 header at the start of `p`.
fn parse_ipv6(p: &[u8], vlan: u16) -> Verdict {
    let Ok(ip6) = Ipv6HeaderSlice::from_slice(p) else {
        return Verdict::IpInvalid(MalformedKind::Ipv6Invalid);
    };
    let plen = usize::from(ip6.payload_length());
    let mut pkt = Packet {
        v6: true,
        src: ip6.source(),
        dst: ip6.destination(),
        proto: ip6.next_header().0,
        vlan,
        ip_len: u32::try_from(IPV6_HEADER_LEN + plen).unwrap_or(u32::MAX),
        ..Packet::default()
    };
    let limit = p.len().min(IPV6_HEADER_LEN + plen);
    let b = &p[..limit];
    let mut off = IPV6_HEADER_LEN;
    while matches!(pkt.proto, 0 | 43 | 44 | 60) {
        // What tshark needs to report this header's next-header field, and to go on.
        let step = match pkt.proto {
            0 | 60 => option_header(b, off),
            43 => b.get(off).map(|&next| {
                let len = b
                    .get(off + 1)
                    .map_or(usize::MAX, |&l| (usize::from(l) + 1) * 8);
                (next, off.checked_add(len).filter(|&end| end <= limit))
            }),
            // Fragment: the whole 8-byte header is read first.
            _ => match (b.get(off), be16(b, off + 2), off + 8 <= limit) {
                (Some(&next), Some(fo), true) => {
                    if fo >> 3 != 0 {
                        pkt.nonfirst_fragment = true;
                    }
                    Some((next, Some(off + 8)))
                }
                _ => None,
            },
        };
        let Some((next, end)) = step else {
            pkt.cut = Some(MalformedKind::Ipv6ExtensionTruncated);
            return Verdict::Flow(pkt);
        };
        pkt.proto = next;
        if pkt.nonfirst_fragment {
            // tshark does not dissect past the fragment header of a non-first fragment.
            return Verdict::Flow(pkt);
        }
        let Some(end) = end else {
            // The header's next-header field was read but the header itself is cut.
            pkt.cut = Some(MalformedKind::Ipv6ExtensionTruncated);
            return Verdict::Flow(pkt);
        };
        off = end;
    }
    transport(&mut pkt, p, off, limit);
    Verdict::Flow(pkt)
}

/// A Hop-by-Hop or Destination Options header at `b[off..]`, walked as tshark does: the
/// length byte first (`None` when it is not there), then the next-header field, then the
/// options (Pad1, else type + length + data, which must have been captured). Returns the
/// next header and, when every option byte tshark reads was there, the end of the header.
/// (tshark's option-specific dissectors differ in a few corner cases of mangled options;
/// see docs/ARCHITECTURE.md.)
fn option_header(b: &[u8], off: usize) -> Option<(u8, Option<usize>)> {
    let len = (usize::from(*b.get(off + 1)?) + 1) * 8;
    let next = *b.get(off)?;
    let end = off + len;
    let mut o = off + 2;
    while o < end {
        let Some(&opt_type) = b.get(o) else {
            return Some((next, None));
        };
        if opt_type == 0 {
            o += 1;
            continue;
        }
        let Some(&opt_len) = b.get(o + 1) else {
            return Some((next, None));
        };
        o += 2 + usize::from(opt_len);
        if o > b.len() {
            // The option's data was not captured: tshark stops inside this header.
            return Some((next, None));
        }
    }
    Some((next, (end <= b.len()).then_some(end)))
}

/// Ports (and TCP flags) of the transport header at `p[off..limit]`.
#[inline]
fn transport(pkt: &mut Packet, p: &[u8], off: usize, limit: usize) {
    if !has_ports(pkt.proto) {
        return;
    }
    let l4 = p.get(off..limit).unwrap_or(&[]);
    // tshark's SCTP dissector reads the whole 12-byte common header before the ports.
    let needed = if pkt.proto == PROTO_SCTP { 12 } else { 4 };
    match (be16(l4, 0), be16(l4, 2)) {
        (Some(s), Some(d)) if l4.len() >= needed => {
            pkt.sport = s;
            pkt.dport = d;
        }
        _ => {
            pkt.cut = Some(MalformedKind::TransportTruncated);
            return;
        }
    }
    if pkt.proto == PROTO_TCP {
        if let Some(&flags) = l4.get(TCP_FLAGS) {
            pkt.tcp_flags = flags;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ether_type: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&ether_type.to_be_bytes());
        f
    }

    fn ipv4(proto: u8, total: u16, frag: u16) -> Vec<u8> {
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        h
    }

    fn flow(v: Verdict) -> Packet {
        match v {
            Verdict::Flow(p) => p,
            other => panic!("expected a flow, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_short_frames_are_truncated() {
        assert_eq!(
            parse_ethernet(&[], 0),
            Verdict::Truncated(MalformedKind::EthernetTruncated)
        );
        assert_eq!(
            parse_ethernet(&[0; 13], 60),
            Verdict::Truncated(MalformedKind::EthernetTruncated)
        );
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 5, 0x08]);
        assert_eq!(
            parse_ethernet(&f, 60),
            Verdict::Truncated(MalformedKind::VlanTruncated)
        );
    }

    #[test]
    fn lengths_and_other_ethertypes_are_non_ip() {
        assert_eq!(parse_ethernet(&eth(100), 114), Verdict::NonIp);
        assert_eq!(parse_ethernet(&eth(0x0806), 60), Verdict::NonIp);
        assert_eq!(parse_ethernet(&eth(0x8847), 60), Verdict::NonIp);
        let mut f = eth(0x8100);
        f.extend_from_slice(&[0, 5, 0x00, 0x40]);
        assert_eq!(parse_ethernet(&f, 60), Verdict::NonIp, "LLC inside a VLAN");
    }

    #[test]
    fn udp_over_qinq_keeps_outer_vid_and_ports() {
        let mut f = eth(0x88A8);
        f.extend_from_slice(&[0x20, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
        f.extend_from_slice(&ipv4(17, 28, 0));
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        let p = flow(parse_ethernet(&f, u32::try_from(f.len()).unwrap()));
        assert_eq!(
            (p.vlan, p.proto, p.sport, p.dport, p.ip_len),
            (10, 17, 12345, 53, 28)
        );
        assert_eq!(&p.src[..4], &[10, 0, 0, 1]);
        assert_eq!(p.cut, None);
    }

    #[test]
    fn ipv4_rules() {
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4(6, 40, 0)[..19]);
        assert_eq!(
            parse_ethernet(&f, 100),
            Verdict::IpInvalid(MalformedKind::Ipv4Invalid),
            "cut before dst"
        );
        let mut f = eth(0x0800);
        let mut h = ipv4(6, 40, 0);
        h[0] = 0x65;
        f.extend_from_slice(&h);
        assert_eq!(
            parse_ethernet(&f, 100),
            Verdict::IpInvalid(MalformedKind::Ipv4Invalid),
            "version 6"
        );
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4(6, 19, 0));
        assert_eq!(
            parse_ethernet(&f, 100),
            Verdict::IpInvalid(MalformedKind::Ipv4Invalid),
            "total < ihl"
        );
        // Port bytes cut by the snap length: a flow with ports 0/0.
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4(6, 40, 0));
        f.extend_from_slice(&[0x30, 0x39, 0]);
        let p = flow(parse_ethernet(&f, 54));
        assert_eq!(
            (p.sport, p.dport, p.cut),
            (0, 0, Some(MalformedKind::TransportTruncated))
        );
        // Non-first fragment: ports 0/0 even with bytes behind the header.
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4(17, 28, 185));
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        let p = flow(parse_ethernet(&f, 42));
        assert!(p.nonfirst_fragment);
        assert_eq!((p.sport, p.dport, p.cut), (0, 0, None));
        // Total length 0 (TSO): the rest of the frame.
        let mut f = eth(0x0800);
        f.extend_from_slice(&ipv4(17, 0, 0));
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
        let p = flow(parse_ethernet(&f, 1514));
        assert_eq!((p.ip_len, p.dport), (1500, 53));
    }

    #[test]
    fn ipv6_extension_chain() {
        let mut f = eth(0x86DD);
        let payload: Vec<u8> = [
            &[44u8, 0, 0, 0, 0, 0, 0, 0][..],     // hop-by-hop -> fragment
            &[17, 0, 0, 0, 0, 0, 0, 1][..],       // fragment offset 0 -> UDP
            &[0x30, 0x39, 0, 53, 0, 8, 0, 0][..], // UDP
        ]
        .concat();
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[0, 64]);
        f.extend_from_slice(&[0x20; 16]);
        f.extend_from_slice(&[0x21; 16]);
        f.extend_from_slice(&payload);
        let p = flow(parse_ethernet(&f, 200));
        assert_eq!((p.proto, p.sport, p.dport, p.ip_len), (17, 12345, 53, 64));
        // Non-first fragment.
        f[14 + 40 + 8 + 3] = 0x08;
        let p = flow(parse_ethernet(&f, 200));
        assert_eq!((p.proto, p.sport, p.nonfirst_fragment), (17, 0, true));
        // Chain cut in the middle of the fragment header.
        let p = flow(parse_ethernet(&f[..14 + 40 + 8 + 1], 200));
        assert_eq!(
            (p.proto, p.cut),
            (44, Some(MalformedKind::Ipv6ExtensionTruncated))
        );
        // AH is terminal.
        f[14 + 6] = 51;
        let p = flow(parse_ethernet(&f, 200));
        assert_eq!((p.proto, p.sport), (51, 0));
        // Wrong version.
        f[14] = 0x40;
        assert_eq!(
            parse_ethernet(&f, 200),
            Verdict::IpInvalid(MalformedKind::Ipv6Invalid)
        );
    }
}
