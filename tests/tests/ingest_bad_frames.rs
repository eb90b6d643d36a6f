//! Issue 4, done-when 4: a helper that sends a frame over the size limit, random bytes, a
//! wrong version, a duplicate sequence or messages out of order is dropped (or its batch
//! ignored), counted in health, and the store is unchanged; the server keeps serving.
//! Raw protocol clients written here, against the real `netwatch-server`. No root needed.

mod api_support;

use api_support::{record, RawHelper, Server};
use netwatch_protocol::{codec, Bye, ByeKind, Message, PROTOCOL_VERSION};

const T: u64 = 1_700_000_000_000_000_000;

fn flows_csv(s: &Server) -> String {
    let r = s.get("/api/v1/flows?format=csv&sort_by=first_seen&sort_order=asc");
    assert_eq!(r.status, 200);
    r.text()
}

fn counter(s: &Server, name: &str) -> u64 {
    s.health()["ingest"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("ingest.{name}"))
}

/// A server holding two flows from one good helper.
fn seeded() -> (Server, String) {
    let s = Server::start(&[]);
    let mut h = RawHelper::connect(&s.socket, 1);
    assert_eq!(h.hello(), 0);
    let ack = h.batch(
        1,
        vec![
            record([10, 0, 0, 1], 40000, [10, 0, 0, 2], 443, T, 3, 2),
            record([10, 0, 0, 3], 53000, [10, 0, 0, 2], 53, T + 1, 1, 1),
        ],
    );
    assert_eq!(ack, 1);
    h.send(&Message::Bye(Bye {
        kind: ByeKind::Shutdown,
        reason: "done".into(),
    }));
    let csv = flows_csv(&s);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    (s, csv)
}

#[test]
fn oversized_frame_is_refused_before_allocation_and_counted() {
    let (s, before) = seeded();
    let mut h = RawHelper::connect(&s.socket, 2);
    h.hello();
    // A length prefix of 4 GiB - 1 (far over MAX_FRAME_LEN), then a few bytes.
    let mut frame = u32::MAX.to_le_bytes().to_vec();
    frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    frame.extend_from_slice(&[0u8; 64]);
    let _ = h.send_raw(&frame);
    assert!(h.closed_by_server());
    assert_eq!(counter(&s, "oversized_frames"), 1);
    assert_eq!(counter(&s, "dropped_connections"), 1);
    assert_eq!(flows_csv(&s), before);
}

#[test]
fn random_bytes_are_refused_and_counted() {
    let (s, before) = seeded();
    // Deterministic "random" bytes (xorshift), with a small valid-looking length prefix so
    // the body reaches the decoder.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut body = Vec::new();
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push(x as u8);
    }
    let mut frame = (2 + body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    frame.extend_from_slice(&body);
    let mut h = RawHelper::connect(&s.socket, 3);
    h.hello();
    let _ = h.send_raw(&frame);
    assert!(h.closed_by_server());
    // Garbage without any Hello, straight from connect.
    let mut g = RawHelper::connect(&s.socket, 4);
    let _ = g.send_raw(&body);
    assert!(g.closed_by_server());
    let h = s.health();
    let bad = h["ingest"]["invalid_frames"].as_u64().unwrap_or(0)
        + h["ingest"]["oversized_frames"].as_u64().unwrap_or(0)
        + h["ingest"]["version_mismatches"].as_u64().unwrap_or(0);
    assert_eq!(bad, 2, "{h}");
    assert_eq!(flows_csv(&s), before);
}

#[test]
fn wrong_version_is_refused_and_counted() {
    let (s, before) = seeded();
    let mut h = RawHelper::connect(&s.socket, 5);
    h.hello();
    let good = codec::encode(&Message::FlowBatch(netwatch_protocol::FlowBatch {
        instance: 5,
        seq: 1,
        interval_start_ns: T,
        interval_end_ns: T + 1,
        records: vec![record([10, 9, 9, 9], 1, [10, 9, 9, 8], 2, T, 1, 0)],
        stats: netwatch_protocol::CaptureStats::default(),
    }))
    .expect("encode");
    let mut bad = good.clone();
    bad[4..6].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
    let _ = h.send_raw(&bad);
    assert!(h.closed_by_server());
    assert_eq!(counter(&s, "version_mismatches"), 1);
    assert_eq!(
        flows_csv(&s),
        before,
        "the batch in the wrong-version frame is not stored"
    );
}

#[test]
fn duplicate_sequence_is_acknowledged_but_not_stored_again() {
    let (s, before) = seeded();
    // Same instance as the seeding helper reconnects and resends seq 1.
    let mut h = RawHelper::connect(&s.socket, 1);
    assert_eq!(
        h.hello(),
        1,
        "the server tells a reconnecting helper what it holds"
    );
    let ack = h.batch(
        1,
        vec![record([10, 0, 0, 1], 40000, [10, 0, 0, 2], 443, T, 3, 2)],
    );
    assert_eq!(ack, 1);
    assert_eq!(counter(&s, "duplicate_batches"), 1);
    assert_eq!(flows_csv(&s), before);
    // The next sequence is stored and merges into the existing flow.
    assert_eq!(
        h.batch(
            2,
            vec![record(
                [10, 0, 0, 1],
                40000,
                [10, 0, 0, 2],
                443,
                T + 5,
                1,
                0
            )]
        ),
        2
    );
    let f = s.json("/api/v1/flows?port=443");
    assert_eq!(f["flows"][0]["packets"], 6);
    assert_eq!(f["flows"][0]["srcIP"], "10.0.0.1");
}

#[test]
fn out_of_order_messages_and_invalid_records() {
    let (s, before) = seeded();
    // A batch before Hello.
    let mut h = RawHelper::connect(&s.socket, 6);
    h.send(&Message::FlowBatch(netwatch_protocol::FlowBatch {
        instance: 6,
        seq: 1,
        interval_start_ns: T,
        interval_end_ns: T,
        records: vec![record([10, 7, 7, 7], 1, [10, 7, 7, 8], 2, T, 1, 0)],
        stats: netwatch_protocol::CaptureStats::default(),
    }));
    assert!(h.closed_by_server());
    assert_eq!(counter(&s, "protocol_errors"), 1);
    assert_eq!(flows_csv(&s), before);
    // Records that break the rules are skipped and counted; the good one is stored.
    let mut h = RawHelper::connect(&s.socket, 7);
    h.hello();
    let mut reversed = record([10, 8, 8, 1], 1, [10, 8, 8, 2], 2, T, 1, 0);
    reversed.first_ns = T + 10;
    let mut swapped = record([10, 8, 8, 3], 1, [10, 8, 8, 4], 2, T, 1, 0);
    std::mem::swap(&mut swapped.key.addr_a, &mut swapped.key.addr_b);
    let mut impossible = record([10, 8, 8, 5], 1, [10, 8, 8, 6], 2, T, 1, 0);
    impossible.ab.bytes = 0;
    let good = record([10, 8, 8, 7], 1, [10, 8, 8, 8], 2, T, 1, 0);
    assert_eq!(h.batch(1, vec![reversed, swapped, impossible, good]), 1);
    assert_eq!(counter(&s, "invalid_records"), 3);
    assert_eq!(flows_csv(&s).lines().count(), 4);
}

#[test]
fn refused_peers_are_counted_and_the_server_keeps_serving() {
    // Allow nobody we are: uid and gid 4242424 only.
    let s = Server::start(&["--allow-uids", "4242424", "--allow-gids", "4242424"]);
    let mut h = RawHelper::connect(&s.socket, 9);
    let _ = h.send_raw(&[0u8; 4]);
    assert!(h.closed_by_server());
    assert_eq!(counter(&s, "refused_peers"), 1);
    assert_eq!(s.get("/api/v1/flows").status, 200);
    let mode = std::fs::metadata(&s.socket)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("socket metadata");
    assert_eq!(mode, 0o660, "socket mode");
}

#[test]
fn several_helpers_at_once_and_a_restart_is_a_new_instance() {
    let s = Server::start(&[]);
    let mut a = RawHelper::connect(&s.socket, 0xa);
    let mut b = RawHelper::connect(&s.socket, 0xb);
    a.hello();
    b.hello();
    a.batch(1, vec![record([10, 1, 0, 1], 1, [10, 1, 0, 2], 2, T, 1, 1)]);
    b.batch(1, vec![record([10, 2, 0, 1], 1, [10, 2, 0, 2], 2, T, 1, 1)]);
    let h = s.health();
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["capture_active"], true);
    let ids: Vec<&str> = h["helpers"]
        .as_array()
        .expect("helpers")
        .iter()
        .filter_map(|x| x["instance"].as_str())
        .collect();
    assert!(
        ids.contains(&"000000000000000a") && ids.contains(&"000000000000000b"),
        "{h}"
    );
    drop(a);
    drop(b);
    // "Restart": a new instance id, sequence from 1 again: stored, not a duplicate.
    let mut c = RawHelper::connect(&s.socket, 0xc);
    assert_eq!(c.hello(), 0);
    assert_eq!(
        c.batch(1, vec![record([10, 3, 0, 1], 1, [10, 3, 0, 2], 2, T, 1, 1)]),
        1
    );
    assert_eq!(s.json("/api/v1/flows")["pagination"]["total_count"], 3);
    assert_eq!(counter(&s, "duplicate_batches"), 0);
}
