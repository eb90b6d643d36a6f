//! Codec contract: round trips of every message, and each way a frame is refused.

use netwatch_protocol::{
    decode, encode, encode_flow_batch_into, encode_into, frame_len, Ack, Bye, ByeKind,
    CaptureStats, CodecError, DirCounters, EndReason, FlowBatch, FlowBatchRef, FlowKey, FlowRecord,
    Hello, MalformedCounts, Message, Side, SourceKind, MAGIC, MAX_FRAME_LEN, PROTOCOL_VERSION,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn hello() -> Message {
    Message::Hello(Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        instance: 0xdead_beef,
        interface: "veth0".into(),
        link_type: 1,
        snaplen: 65535,
        source: SourceKind::Live,
        pid: 42,
        started_ns: 1_700_000_000_000_000_000,
        software: "netwatch-capture 0.1.0".into(),
    })
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn arb_dir() -> impl Strategy<Value = DirCounters> {
    (any::<u64>(), any::<u64>(), any::<u8>()).prop_map(|(packets, bytes, tcp_flags)| DirCounters {
        packets,
        bytes,
        tcp_flags,
    })
}

fn arb_end() -> impl Strategy<Value = Option<EndReason>> {
    prop_oneof![
        Just(None),
        Just(Some(EndReason::Fin)),
        Just(Some(EndReason::Rst)),
        Just(Some(EndReason::IdleTimeout)),
        Just(Some(EndReason::ActiveTimeout)),
        Just(Some(EndReason::Evicted)),
        Just(Some(EndReason::Shutdown)),
    ]
}

fn arb_record() -> impl Strategy<Value = FlowRecord> {
    (
        (
            arb_ip(),
            any::<u16>(),
            arb_ip(),
            any::<u16>(),
            any::<u8>(),
            0u16..4096,
        ),
        any::<bool>(),
        (any::<u64>(), any::<u64>()),
        (arb_dir(), arb_dir()),
        arb_end(),
    )
        .prop_map(
            |((s, sp, d, dp, proto, vlan), init_a, (first_ns, last_ns), (ab, ba), end)| {
                let (key, _) = FlowKey::from_packet(s, sp, d, dp, proto, vlan);
                FlowRecord {
                    key,
                    initiator: if init_a { Side::A } else { Side::B },
                    first_ns,
                    last_ns,
                    ab,
                    ba,
                    end,
                }
            },
        )
}

fn arb_stats() -> impl Strategy<Value = CaptureStats> {
    (
        prop::array::uniform7(any::<u64>()),
        prop::collection::vec(any::<u64>(), 18),
    )
        .prop_map(|(counts, v)| CaptureStats {
            frames: v[0],
            bytes: v[1],
            flow_frames: v[2],
            non_ip_frames: v[3],
            ip_invalid_frames: v[4],
            truncated_frames: v[5],
            malformed: MalformedCounts { counts },
            kernel_drops: v[6],
            kernel_freezes: v[7],
            table_occupancy: v[8],
            table_capacity: v[9],
            table_evictions: v[10],
            table_rejects: v[11],
            backlog_dropped_batches: v[12],
            backlog_dropped_records: v[13],
            cpu_user_ns: v[14],
            cpu_system_ns: v[15],
            rss_bytes: v[16],
            capture_errors: v[17],
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(hello()),
        (
            any::<u64>(),
            any::<u64>(),
            any::<(u64, u64)>(),
            prop::collection::vec(arb_record(), 0..64),
            arb_stats()
        )
            .prop_map(|(instance, seq, (s, e), records, stats)| {
                Message::FlowBatch(FlowBatch {
                    instance,
                    seq,
                    interval_start_ns: s,
                    interval_end_ns: e,
                    records,
                    stats,
                })
            }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(instance, seq)| Message::Ack(Ack { instance, seq })),
        (any::<bool>(), ".{0,40}").prop_map(|(failed, reason)| Message::Bye(Bye {
            kind: if failed {
                ByeKind::CaptureFailed
            } else {
                ByeKind::Shutdown
            },
            reason,
        })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(msg in arb_message()) {
        let bytes = encode(&msg).expect("encode");
        let (back, used) = decode(&bytes).expect("decode");
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn every_strict_prefix_is_incomplete(msg in arb_message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&msg).expect("encode");
        let cut = cut.index(bytes.len());
        let is_incomplete = matches!(decode(&bytes[..cut]), Err(CodecError::Incomplete { .. }));
        prop_assert!(is_incomplete);
    }

    #[test]
    fn two_frames_in_a_row_decode_in_order(a in arb_message(), b in arb_message()) {
        let mut buf = Vec::new();
        encode_into(&a, &mut buf).expect("a");
        encode_into(&b, &mut buf).expect("b");
        let (m1, n1) = decode(&buf).expect("first");
        let (m2, n2) = decode(&buf[n1..]).expect("second");
        prop_assert_eq!(m1, a);
        prop_assert_eq!(m2, b);
        prop_assert_eq!(n1 + n2, buf.len());
    }

    /// The helper encodes borrowed batches: the bytes must be those of the owned
    /// `Message::FlowBatch` (same variant, same fields in the same order), appended after
    /// whatever the buffer held.
    #[test]
    fn a_borrowed_batch_encodes_as_the_owned_one(msg in arb_message(), before in any::<Vec<u8>>()) {
        let Message::FlowBatch(b) = &msg else { return Ok(()) };
        let owned = encode(&msg).expect("owned");
        let mut buf = before.clone();
        encode_flow_batch_into(&FlowBatchRef {
            instance: b.instance,
            seq: b.seq,
            interval_start_ns: b.interval_start_ns,
            interval_end_ns: b.interval_end_ns,
            records: &b.records,
            stats: b.stats,
        }, &mut buf).expect("borrowed");
        prop_assert_eq!(&buf[..before.len()], &before[..]);
        prop_assert_eq!(&buf[before.len()..], &owned[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }
}

#[test]
fn length_over_the_maximum_is_refused_before_reading_the_body() {
    let too_long = u32::try_from(MAX_FRAME_LEN + 1).expect("fits");
    let mut buf = too_long.to_le_bytes().to_vec();
    // Only the prefix is present: a decoder that allocated or waited for the body first
    // would answer Incomplete instead.
    assert_eq!(
        decode(&buf),
        Err(CodecError::TooLong {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    buf = u32::MAX.to_le_bytes().to_vec();
    assert!(matches!(frame_len(&buf), Err(CodecError::TooLong { .. })));
}

#[test]
fn short_frames_are_incomplete_not_invalid() {
    let bytes = encode(&hello()).expect("encode");
    assert_eq!(
        decode(&[]),
        Err(CodecError::Incomplete { have: 0, needed: 4 })
    );
    assert_eq!(
        decode(&bytes[..3]),
        Err(CodecError::Incomplete { have: 3, needed: 4 })
    );
    assert_eq!(
        decode(&bytes[..bytes.len() - 1]),
        Err(CodecError::Incomplete {
            have: bytes.len() - 1,
            needed: bytes.len()
        })
    );
}

#[test]
fn garbage_is_invalid() {
    // A well-formed header around a body that is not a message (variant index 200).
    let mut frame = vec![0u8; 4];
    frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    frame.extend_from_slice(&[200, 1, 2, 3, 4, 5]);
    let len = u32::try_from(frame.len() - 4).expect("small");
    frame[..4].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(decode(&frame), Err(CodecError::Invalid(_))));

    // A valid message followed by trailing bytes inside the same frame.
    let mut bytes = encode(&Message::Ack(Ack {
        instance: 1,
        seq: 2,
    }))
    .expect("encode");
    bytes.push(0);
    let len = u32::try_from(bytes.len() - 4).expect("small");
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(decode(&bytes), Err(CodecError::Invalid(m)) if m.contains("trailing")));

    // A length too short to hold the version.
    assert!(matches!(
        decode(&[1, 0, 0, 0, 9]),
        Err(CodecError::Invalid(_))
    ));
}

#[test]
fn wrong_version_is_a_clear_error() {
    let mut bytes = encode(&hello()).expect("encode");
    bytes[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    let err = decode(&bytes).expect_err("must refuse");
    assert_eq!(
        err,
        CodecError::VersionMismatch {
            got: PROTOCOL_VERSION + 1,
            expected: PROTOCOL_VERSION
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "protocol version mismatch: peer speaks version {}, this build speaks {}",
            PROTOCOL_VERSION + 1,
            PROTOCOL_VERSION
        )
    );
}

#[test]
fn oversized_batch_is_refused_when_encoding() {
    let rec = FlowRecord {
        key: FlowKey::from_packet(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            1,
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            2,
            6,
            0,
        )
        .0,
        initiator: Side::A,
        first_ns: u64::MAX,
        last_ns: u64::MAX,
        ab: DirCounters {
            packets: u64::MAX,
            bytes: u64::MAX,
            tcp_flags: 0xff,
        },
        ba: DirCounters {
            packets: u64::MAX,
            bytes: u64::MAX,
            tcp_flags: 0xff,
        },
        end: Some(EndReason::Fin),
    };
    // About 110 bytes per record: 200k records is well over 16 MiB.
    let batch = Message::FlowBatch(FlowBatch {
        instance: 1,
        seq: 1,
        interval_start_ns: 0,
        interval_end_ns: 0,
        records: vec![rec; 200_000],
        stats: CaptureStats::default(),
    });
    let mut out = vec![7u8];
    assert!(matches!(
        encode_into(&batch, &mut out),
        Err(CodecError::TooLong { .. })
    ));
    assert_eq!(
        out,
        vec![7u8],
        "a refused frame leaves the buffer as it was"
    );
}
