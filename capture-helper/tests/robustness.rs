//! Any byte string is a frame: the parser and collector never panic, and every frame lands
//! in exactly one accounting bucket. Plus the named bad cases: empty, cut, oversized and
//! inconsistent lengths.

use netwatch_capture::collector::{Batch, Collector};
use netwatch_capture::flow::TableConfig;
use netwatch_capture::parse::{parse_ethernet, parse_ethernet_general, Verdict};
use netwatch_capture::source::Frame;
use netwatch_protocol::{CaptureStats, MalformedKind};
use proptest::prelude::*;

fn small() -> TableConfig {
    TableConfig {
        capacity: 64,
        ..TableConfig::default()
    }
}

fn assert_buckets(s: &CaptureStats) {
    assert_eq!(
        s.frames,
        s.flow_frames + s.non_ip_frames + s.ip_invalid_frames + s.truncated_frames,
        "{s:?}"
    );
}

/// A valid Ethernet/VLAN/IPv4-or-IPv6/TCP frame, the seed of the mutation strategy.
fn valid_frame(v6: bool, vlan: bool) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    }
    let tcp = [
        0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 28, 0, 64]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop -> TCP
    } else {
        f.extend_from_slice(&[
            0x08, 0x00, 0x46, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend_from_slice(&[1, 1, 1, 0]); // options: NOP NOP NOP EOL
    }
    f.extend_from_slice(&tcp);
    f
}

/// A frame of the parser's fast path: Ethernet (optionally one 802.1Q tag), IPv4 without
/// options, TCP (`proto` 6) or UDP (17) with a payload of `payload` bytes.
fn fast_path_frame(vlan: bool, proto: u8, payload: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x20, 0x2a]);
    }
    let l4: Vec<u8> = if proto == 6 {
        vec![
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ]
    } else {
        vec![0x9c, 0x40, 0x00, 0x35, 0, 8, 0, 0]
    };
    let total = u16::try_from(20 + l4.len() + payload)
        .unwrap()
        .to_be_bytes();
    f.extend_from_slice(&[
        0x08, 0x00, 0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, proto,
    ]);
    f.extend_from_slice(&[0, 0, 10, 0, 0, 1, 93, 184, 216, 34]);
    f.extend_from_slice(&l4);
    f.resize(f.len() + payload, 0);
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The fast path (option-less IPv4 TCP/UDP) decides exactly as the general parser, on
    /// mutated fast-path frames (header bytes flipped, frame cut, wire length arbitrary).
    #[test]
    fn fast_path_equals_general_parser(
        vlan in any::<bool>(),
        tcp in any::<bool>(),
        payload in 0usize..64,
        flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..4),
        cut in any::<usize>(),
        wire in any::<u32>(),
    ) {
        let mut f = fast_path_frame(vlan, if tcp { 6 } else { 17 }, payload);
        let whole = u32::try_from(f.len()).unwrap();
        prop_assert_eq!(parse_ethernet(&f, whole), parse_ethernet_general(&f, whole));
        for (at, v) in flips {
            if let Some(b) = f.get_mut(at) {
                *b = v;
            }
        }
        f.truncate(cut % (f.len() + 1));
        prop_assert_eq!(parse_ethernet(&f, wire), parse_ethernet_general(&f, wire));
        prop_assert_eq!(parse_ethernet(&f, whole), parse_ethernet_general(&f, whole));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_land_in_one_bucket(
        frames in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..200), any::<u32>()), 1..20)
    ) {
        let mut c = Collector::new(small());
        for (i, (data, wire)) in frames.iter().enumerate() {
            prop_assert_eq!(parse_ethernet(data, *wire), parse_ethernet_general(data, *wire));
            c.process(&Frame { data, wire_len: *wire, ts_ns: i as u64 }, i as u64);
        }
        c.expire(u64::MAX / 2);
        let mut out = Vec::new();
        c.finish(&mut out);
        let s = c.stats();
        prop_assert_eq!(s.frames, frames.len() as u64);
        assert_buckets(&s);
        let flow_packets: u64 = out.iter().map(netwatch_protocol::FlowRecord::packets).sum();
        prop_assert_eq!(flow_packets, s.flow_frames);
    }

    #[test]
    fn mutated_valid_frames_never_panic_and_land_in_one_bucket(
        v6 in any::<bool>(),
        vlan in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
    ) {
        let mut f = valid_frame(v6, vlan);
        let len = f.len();
        for (at, byte) in flips {
            f[at % len] = byte;
        }
        f.truncate(cut % (len + 1));
        let mut c = Collector::new(small());
        c.process(&Frame { data: &f, wire_len: u32::try_from(len).unwrap(), ts_ns: 1 }, 1);
        let s = c.stats();
        prop_assert_eq!(s.frames, 1);
        assert_buckets(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Counting in prefetched batches (the live and offline path) gives the same statistics
    /// and the same records as frame by frame, also with a table small enough to evict and
    /// timeouts that expire flows between frames.
    #[test]
    fn batches_count_exactly_as_frame_by_frame(
        frames in proptest::collection::vec(
            (any::<u8>(), any::<bool>(), any::<bool>(), 0u64..40_000_000_000), 1..150),
    ) {
        let cfg = TableConfig { capacity: 16, ..TableConfig::default() };
        let (mut one, mut many) = (Collector::new(cfg), Collector::new(cfg));
        let mut batch = Batch::default();
        let (mut rec_one, mut rec_many) = (Vec::new(), Vec::new());
        let mut now = 0;
        for (host, v6, vlan, dt) in frames {
            let mut f = valid_frame(v6, vlan);
            // The last byte of the destination address (before 4 bytes of IPv4 options or
            // an 8-byte hop-by-hop header, then 20 bytes of TCP).
            let at = f.len() - if v6 { 29 } else { 25 };
            f[at] = host;
            now += dt;
            let frame = Frame { data: &f, wire_len: u32::try_from(f.len()).unwrap(), ts_ns: now };
            one.process(&frame, now);
            one.expire(now);
            one.drain_changes(&mut rec_one);
            batch.push(&mut many, &frame, now, |c, t| {
                c.expire(t);
                c.drain_changes(&mut rec_many);
            });
        }
        batch.flush(&mut many, |c, t| {
            c.expire(t);
            c.drain_changes(&mut rec_many);
        });
        one.finish(&mut rec_one);
        many.finish(&mut rec_many);
        prop_assert_eq!(one.stats(), many.stats());
        prop_assert_eq!(rec_one, rec_many);
    }
}

fn one(data: &[u8], wire_len: u32) -> CaptureStats {
    let mut c = Collector::new(small());
    c.process(
        &Frame {
            data,
            wire_len,
            ts_ns: 5,
        },
        5,
    );
    let s = c.stats();
    assert_buckets(&s);
    s
}

#[test]
fn zero_length_frame_is_truncated() {
    let s = one(&[], 0);
    assert_eq!(
        (
            s.truncated_frames,
            s.malformed.get(MalformedKind::EthernetTruncated)
        ),
        (1, 1)
    );
}

#[test]
fn every_cut_of_a_valid_frame_is_counted_once() {
    for v6 in [false, true] {
        for vlan in [false, true] {
            let f = valid_frame(v6, vlan);
            assert!(
                matches!(parse_ethernet(&f, 100), Verdict::Flow(p) if p.sport == 40000 && p.dport == 443)
            );
            for cut in 0..=f.len() {
                let s = one(&f[..cut], u32::try_from(f.len()).unwrap());
                assert_eq!(s.frames, 1);
                assert_eq!(s.bytes, f.len() as u64, "bytes are the wire length");
            }
        }
    }
}

#[test]
fn buckets_of_named_cases() {
    let f = valid_frame(false, true);
    assert_eq!(
        one(&f[..15], 100).truncated_frames,
        1,
        "cut inside the VLAN tag"
    );
    assert_eq!(
        one(&f[..20], 100).ip_invalid_frames,
        1,
        "cut inside the IPv4 header"
    );
    let s = one(&f[..45], 100);
    assert_eq!(
        (
            s.flow_frames,
            s.malformed.get(MalformedKind::TransportTruncated)
        ),
        (1, 1)
    );
    let mut arp = f.clone();
    arp[16..18].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(one(&arp, 60).non_ip_frames, 1);
    let v6 = valid_frame(true, false);
    let s = one(&v6[..14 + 40 + 1], 100);
    assert_eq!(
        (
            s.flow_frames,
            s.malformed.get(MalformedKind::Ipv6ExtensionTruncated)
        ),
        (1, 1)
    );
}

#[test]
fn oversized_and_inconsistent_lengths_are_bad_length() {
    let mut big = valid_frame(false, false);
    big.resize(300 * 1024, 0);
    let s = one(&big, u32::try_from(big.len()).unwrap());
    assert_eq!(
        (s.flow_frames, s.malformed.get(MalformedKind::BadLength)),
        (1, 1)
    );
    assert_eq!(s.bytes, big.len() as u64);
    // Wire length below the captured length: counted with the captured length.
    let f = valid_frame(false, false);
    let s = one(&f, 10);
    assert_eq!(
        (
            s.flow_frames,
            s.malformed.get(MalformedKind::BadLength),
            s.bytes
        ),
        (1, 1, f.len() as u64)
    );
}
