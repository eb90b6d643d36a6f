use super::*;
use netwatch_protocol::{Hello, MAGIC, PROTOCOL_VERSION};
use std::net::Ipv4Addr;

const T0: u64 = 1_356_998_400 * NS; // 2013-01-01T00:00:00Z

fn hello(instance: u64, source: SourceKind) -> Hello {
    Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        instance,
        interface: "test".into(),
        link_type: 1,
        snaplen: 65535,
        source,
        pid: 1,
        started_ns: T0,
        software: "test".into(),
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A record for a packet exchange: `n_ab` packets of 100 bytes from A, `n_ba` of 200 from B.
#[allow(clippy::too_many_arguments)]
fn rec(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    first: u64,
    last: u64,
    n_ab: u64,
    n_ba: u64,
) -> FlowRecord {
    let (key, side) = FlowKey::from_packet(src, sport, dst, dport, 6, 0);
    let (ab, ba) = (
        DirCounters {
            packets: n_ab,
            bytes: 100 * n_ab,
            tcp_flags: 0,
        },
        DirCounters {
            packets: n_ba,
            bytes: 200 * n_ba,
            tcp_flags: 0,
        },
    );
    // n_ab/n_ba are given from the initiator's point of view: swap when src is side B.
    let (ab, ba) = if side == Side::A { (ab, ba) } else { (ba, ab) };
    FlowRecord {
        key,
        initiator: side,
        first_ns: first,
        last_ns: last,
        ab,
        ba,
        end: None,
    }
}

fn batch(seq: u64, end: u64, records: Vec<FlowRecord>) -> FlowBatch {
    FlowBatch {
        instance: 7,
        seq,
        interval_start_ns: end.saturating_sub(NS / 2),
        interval_end_ns: end,
        records,
        stats: CaptureStats::default(),
    }
}

/// The store's clock and every flow it holds, in the default order (the brute-force
/// tests' reference list).
fn every_flow(s: &Store) -> (u64, Vec<FlowView>) {
    let now = s.now(0);
    let q = FlowQuery {
        limit: usize::MAX,
        ..FlowQuery::default()
    };
    (now, s.query(&q, now).flows)
}

fn replay_store() -> Store {
    let mut s = Store::new(StoreConfig::default());
    // The server ticks on the wall clock before any replay arrives.
    s.tick(T0 + 1_000_000 * NS, 0.0, 0);
    s.helper_connected(&hello(7, SourceKind::Replay), 0, 0, 1);
    s
}

#[test]
fn records_of_one_key_merge_and_keep_the_initiator() {
    let mut s = replay_store();
    let c = v4(10, 0, 0, 2);
    let srv = v4(10, 0, 0, 1);
    let r1 = rec(c, 40000, srv, 80, T0, T0 + NS, 3, 2);
    let r2 = rec(c, 40000, srv, 80, T0, T0 + 2 * NS, 1, 4);
    assert_eq!(
        s.ingest(&batch(1, T0 + NS, vec![r1]), 0),
        BatchOutcome::Stored { ack: 1, invalid: 0 }
    );
    assert_eq!(
        s.ingest(&batch(2, T0 + 2 * NS, vec![r2]), 0),
        BatchOutcome::Stored { ack: 2, invalid: 0 }
    );
    assert_eq!(s.len(), 1);
    let f = s.get(&r1.key, s.now(0)).expect("stored");
    assert_eq!(f.packets(), 10);
    assert_eq!(f.bytes(), 4 * 100 + 6 * 200);
    assert_eq!((f.first_ns, f.last_ns), (T0, T0 + 2 * NS));
    let (init, resp) = f.by_role();
    assert_eq!((init.packets, resp.packets), (4, 6));
    assert_eq!(f.key.endpoint(f.initiator), (c, 40000));
    assert_eq!(f.status, FlowStatus::Active);
}

#[test]
fn records_of_one_key_in_one_batch_add_up() {
    // Two capture threads may both report a key in one interval (the helper sends their
    // records as they are): the store adds them, keeping the earliest start.
    let mut s = replay_store();
    let c = v4(10, 0, 0, 2);
    let srv = v4(10, 0, 0, 1);
    let r1 = rec(c, 40000, srv, 53, T0 + NS, T0 + 2 * NS, 2, 1);
    let r2 = rec(c, 40000, srv, 53, T0, T0 + NS, 3, 0);
    assert_eq!(
        s.ingest(&batch(1, T0 + 2 * NS, vec![r1, r2]), 0),
        BatchOutcome::Stored { ack: 1, invalid: 0 }
    );
    assert_eq!(s.len(), 1);
    let f = s.get(&r1.key, s.now(0)).expect("stored");
    assert_eq!(f.packets(), 6);
    assert_eq!((f.first_ns, f.last_ns), (T0, T0 + 2 * NS));
}

#[test]
fn duplicates_and_unknown_instances_leave_the_store_unchanged() {
    let mut s = replay_store();
    let r = rec(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, T0, T0, 1, 0);
    s.ingest(&batch(1, T0 + NS, vec![r]), 0);
    let before = s.get(&r.key, T0).expect("stored");
    assert_eq!(
        s.ingest(&batch(1, T0 + NS, vec![r]), 0),
        BatchOutcome::Duplicate { ack: 1 }
    );
    let mut other = batch(5, T0 + NS, vec![r]);
    other.instance = 99;
    assert_eq!(s.ingest(&other, 0), BatchOutcome::Duplicate { ack: 0 });
    assert_eq!(s.get(&r.key, T0), Some(before));
    assert_eq!(s.counters().duplicate_batches, 1);
    assert_eq!(s.counters().records, 1);
}

#[test]
fn invalid_records_are_skipped_and_counted() {
    let mut s = replay_store();
    let good = rec(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, T0, T0, 1, 0);
    let mut reversed = good;
    reversed.key.port_a = 9;
    reversed.first_ns = T0 + 5;
    let mut bad_key = good;
    bad_key.key.addr_a = v4(9, 9, 9, 9);
    let mut bad_counts = good;
    bad_counts.key.port_a = 10;
    bad_counts.ab.bytes = 0;
    let out = s.ingest(
        &batch(1, T0 + NS, vec![good, reversed, bad_key, bad_counts]),
        0,
    );
    assert_eq!(out, BatchOutcome::Stored { ack: 1, invalid: 3 });
    assert_eq!(s.len(), 1);
}

#[test]
fn status_follows_idle_timeout_and_end_reasons() {
    let mut s = replay_store();
    let a = rec(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, T0, T0, 1, 1);
    let mut b = rec(v4(1, 1, 1, 1), 3, v4(2, 2, 2, 2), 4, T0, T0 + 20 * NS, 1, 1);
    b.end = Some(EndReason::Fin);
    let c = rec(v4(1, 1, 1, 1), 5, v4(2, 2, 2, 2), 6, T0, T0 + 20 * NS, 1, 1);
    s.ingest(&batch(1, T0 + 20 * NS, vec![a, b, c]), 0);
    let now = s.now(0);
    assert_eq!(now, T0 + 20 * NS, "replay clock = newest capture time");
    assert_eq!(s.get(&a.key, now).map(|f| f.status), Some(FlowStatus::Idle));
    assert_eq!(
        s.get(&b.key, now).map(|f| f.status),
        Some(FlowStatus::Closed)
    );
    assert_eq!(
        s.get(&c.key, now).map(|f| f.status),
        Some(FlowStatus::Active)
    );
    assert_eq!(s.count_status(now, FlowStatus::Idle), 1);
}

#[test]
fn retention_drops_old_flows() {
    let mut s = replay_store();
    let old = rec(v4(1, 1, 1, 1), 1, v4(2, 2, 2, 2), 2, T0, T0, 1, 0);
    let new = rec(
        v4(1, 1, 1, 1),
        3,
        v4(2, 2, 2, 2),
        4,
        T0 + 3601 * NS,
        T0 + 3601 * NS,
        1,
        0,
    );
    s.ingest(&batch(1, T0 + NS, vec![old]), 0);
    s.ingest(&batch(2, T0 + 3601 * NS, vec![new]), 0);
    s.tick(0, 0.0, 0);
    assert_eq!(s.len(), 1);
    assert!(s.get(&old.key, s.now(0)).is_none());
    assert_eq!(s.counters().expired, 1);
}

#[test]
fn memory_ceiling_evicts_closed_then_idle_then_active() {
    let cfg = StoreConfig {
        memory_limit: 16 * 1024 * 1024 + 1100 * BYTES_PER_FLOW,
        ..StoreConfig::default()
    };
    let mut s = Store::new(cfg);
    assert_eq!(s.max_flows(), 1100);
    s.helper_connected(&hello(7, SourceKind::Replay), 0, 0, 1);
    let now = T0 + 100 * NS;
    let mut recs = Vec::new();
    for i in 0..1000u16 {
        // 300 closed (oldest), 300 idle, 400 active.
        let (last, end) = match i {
            0..300 => (T0 + 50 * NS, Some(EndReason::Rst)),
            300..600 => (T0 + u64::from(i) * NS / 100, None),
            _ => (now, None),
        };
        let mut r = rec(
            v4(10, 0, (i >> 8) as u8, i as u8),
            1000,
            v4(10, 1, 0, 1),
            80,
            T0,
            last,
            1,
            1,
        );
        r.end = end;
        recs.push(r);
    }
    s.ingest(&batch(1, now, recs), 0);
    assert_eq!(s.len(), 1000);
    let more: Vec<FlowRecord> = (0..200u16)
        .map(|i| {
            rec(
                v4(10, 2, (i >> 8) as u8, i as u8),
                1000,
                v4(10, 1, 0, 1),
                80,
                now,
                now,
                1,
                1,
            )
        })
        .collect();
    s.ingest(&batch(2, now, more), 0);
    // 1200 > 1100: evict down to 1045; 155 evictions, all from the closed flows.
    assert_eq!(s.len(), 1045);
    let c = s.counters();
    assert_eq!(
        (c.evicted_closed, c.evicted_idle, c.evicted_active),
        (155, 0, 0)
    );
    assert!(s.last_problem_wall_ns() > 0 || c.evicted() > 0);
}

#[test]
fn queries_filter_sort_and_paginate() {
    let mut s = replay_store();
    let mut recs = Vec::new();
    for i in 0..50u8 {
        recs.push(rec(
            v4(192, 168, 1, i),
            40000,
            v4(10, 0, 0, 1),
            443,
            T0 + u64::from(i) * NS,
            T0 + 60 * NS,
            u64::from(i) + 1,
            1,
        ));
    }
    for i in 0..10u8 {
        recs.push(rec(
            v4(172, 16, 0, i),
            5353,
            v4(10, 0, 0, 2),
            53,
            T0,
            T0 + 60 * NS,
            1,
            1,
        ));
    }
    s.ingest(&batch(1, T0 + 60 * NS, recs), 0);
    let now = s.now(0);
    let q = FlowQuery {
        src: Some("192.168.1.0/24".parse().expect("net")),
        port: Some((443, 443)),
        sort_by: SortBy::Bytes,
        order: SortOrder::Desc,
        limit: 10,
        offset: 5,
        ..FlowQuery::default()
    };
    let page = s.query(&q, now);
    assert_eq!(page.total, 50);
    assert_eq!(page.flows.len(), 10);
    let bytes: Vec<u64> = page.flows.iter().map(FlowView::bytes).collect();
    let expect: Vec<u64> = (0..10u64).map(|k| (50 - 5 - k) * 100 + 200).collect();
    assert_eq!(bytes, expect);
    // dst filter matches the responder only; src of DNS flows is 172.16/16.
    let q = FlowQuery {
        dst: Some("10.0.0.2/32".parse().expect("net")),
        limit: 100,
        ..FlowQuery::default()
    };
    assert_eq!(s.query(&q, now).total, 10);
    let q = FlowQuery {
        src: Some("10.0.0.2/32".parse().expect("net")),
        limit: 100,
        ..FlowQuery::default()
    };
    assert_eq!(s.query(&q, now).total, 0);
    // Time range: flows active inside [T0+45s, T0+50s] = all; starting after T0+40s: 9.
    let q = FlowQuery {
        time_start: Some(T0 + 45 * NS),
        time_end: Some(T0 + 50 * NS),
        limit: 1,
        ..FlowQuery::default()
    };
    assert_eq!(s.query(&q, now).total, 60);
    let q = FlowQuery {
        time_end: Some(T0 + 40 * NS),
        proto: Some(6),
        src: Some("192.168.0.0/16".parse().expect("n")),
        limit: 1,
        ..FlowQuery::default()
    };
    assert_eq!(s.query(&q, now).total, 41);
    // Pagination covers everything exactly once.
    let mut seen = std::collections::HashSet::new();
    for off in (0..60).step_by(7) {
        let q = FlowQuery {
            sort_by: SortBy::FirstSeen,
            order: SortOrder::Asc,
            limit: 7,
            offset: off,
            ..FlowQuery::default()
        };
        for f in s.query(&q, now).flows {
            assert!(seen.insert(f.key));
        }
    }
    assert_eq!(seen.len(), 60);
}

#[test]
fn top_talkers_windows_and_history_sums() {
    let mut s = replay_store();
    let host = v4(10, 0, 0, 1);
    // Minute 0: host talks 1000 bytes to .2; minute 10: 300 bytes to .3.
    let r1 = rec(host, 1, v4(10, 0, 0, 2), 2, T0, T0 + NS, 10, 0);
    let r2 = rec(
        v4(10, 0, 0, 3),
        1,
        host,
        2,
        T0 + 600 * NS,
        T0 + 600 * NS,
        3,
        0,
    );
    s.ingest(&batch(1, T0 + NS, vec![r1]), 0);
    s.ingest(&batch(2, T0 + 601 * NS, vec![r2]), 0);
    let now = s.now(0);
    let (rows, total) = s.top_talkers(now, 5, 10, 5);
    assert_eq!(total, 300);
    assert_eq!(
        rows.iter().map(|r| (r.addr, r.bytes)).collect::<Vec<_>>(),
        vec![(host, 300), (v4(10, 0, 0, 3), 300)]
    );
    assert_eq!(rows[0].flow_count, 1);
    let (rows, total) = s.top_talkers(now, 15, 10, 5);
    assert_eq!(total, 1300);
    assert_eq!(
        (
            rows[0].addr,
            rows[0].bytes,
            rows[0].flow_count,
            rows[0].flows.len()
        ),
        (host, 1300, 2, 2)
    );
    assert_eq!(
        rows[1],
        TalkerRow {
            addr: v4(10, 0, 0, 2),
            bytes: 1000,
            packets: 10,
            flow_count: 1,
            flows: vec![s.get(&r1.key, now).expect("f")]
        }
    );
    let hist = s.history(now, 3600, 1);
    assert_eq!(hist.iter().map(|p| p.bytes).sum::<u64>(), 1300);
    assert_eq!(hist.iter().map(|p| p.packets).sum::<u64>(), 13);
    let coarse = s.history(now, 900, 60);
    assert_eq!(coarse.len(), 15);
    assert_eq!(coarse.iter().map(|p| p.bytes).sum::<u64>(), 1300);
    let protos = s.protocols(now, 60);
    assert_eq!(protos.len(), 1);
    assert_eq!((protos[0].proto, protos[0].agg.bytes), (6, 1300));
}

#[test]
fn live_clock_is_wall_clock() {
    let mut s = Store::new(StoreConfig::default());
    s.helper_connected(&hello(7, SourceKind::Live), 0, 0, 1);
    let wall = T0 + 5000 * NS;
    let r = rec(
        v4(1, 1, 1, 1),
        1,
        v4(2, 2, 2, 2),
        2,
        wall - NS,
        wall - NS,
        1,
        0,
    );
    s.ingest(&batch(1, wall, vec![r]), wall);
    assert_eq!(s.now(wall + 7), wall + 7);
    assert!(!s.clock().is_replay());
}

#[test]
fn selective_and_broad_filters_agree_with_brute_force() {
    let mut s = replay_store();
    let mut recs = Vec::new();
    for i in 0..4000u32 {
        let port = if i % 97 == 0 { 8443 } else { 443 };
        let (src, dst) = if i % 3 == 0 {
            (
                v4(10, 1, (i >> 8) as u8, i as u8),
                v4(10, 2, 0, (i % 5) as u8),
            )
        } else {
            (
                v4(10, 2, 0, (i % 5) as u8),
                v4(10, 1, (i >> 8) as u8, i as u8),
            )
        };
        recs.push(rec(
            src,
            2000 + (i % 50) as u16,
            dst,
            port,
            T0 + u64::from(i) * NS / 100,
            T0 + u64::from(i) * NS / 50,
            1,
            1,
        ));
    }
    s.ingest(&batch(1, T0 + 100 * NS, recs), 0);
    let (now, all) = every_flow(&s);
    type Pred = Box<dyn Fn(&FlowView) -> bool>;
    let cases: Vec<(FlowQuery, Pred)> = vec![
        (
            FlowQuery {
                port: Some((8443, 8443)),
                ..FlowQuery::default()
            },
            Box::new(|f: &FlowView| f.key.port_a == 8443 || f.key.port_b == 8443),
        ),
        (
            FlowQuery {
                port: Some((443, 443)),
                ..FlowQuery::default()
            },
            Box::new(|f: &FlowView| f.key.port_a == 443 || f.key.port_b == 443),
        ),
        (
            FlowQuery {
                src: Some("10.1.3.0/24".parse().expect("net")),
                ..FlowQuery::default()
            },
            Box::new(
                |f: &FlowView| matches!(f.key.endpoint(f.initiator).0, IpAddr::V4(a) if a.octets()[..3] == [10, 1, 3]),
            ),
        ),
        (
            FlowQuery {
                dst: Some("10.2.0.0/16".parse().expect("net")),
                ..FlowQuery::default()
            },
            Box::new(
                |f: &FlowView| matches!(f.key.endpoint(f.initiator.opposite()).0, IpAddr::V4(a) if a.octets()[..2] == [10, 2]),
            ),
        ),
        (
            FlowQuery {
                time_start: Some(T0 + 79 * NS),
                ..FlowQuery::default()
            },
            Box::new(|f: &FlowView| f.last_ns >= T0 + 79 * NS),
        ),
        (
            FlowQuery {
                time_end: Some(T0 + NS),
                ..FlowQuery::default()
            },
            Box::new(|f: &FlowView| f.first_ns <= T0 + NS),
        ),
        (
            // Either endpoint (the top-talker drill-down), alone: no other filter.
            FlowQuery {
                host: Some("10.2.0.3/32".parse().expect("net")),
                ..FlowQuery::default()
            },
            Box::new(|f: &FlowView| {
                let h: IpAddr = v4(10, 2, 0, 3);
                f.key.addr_a == h || f.key.addr_b == h
            }),
        ),
    ];
    for (mut q, pred) in cases {
        q.limit = 25;
        q.sort_by = SortBy::FirstSeen;
        let page = s.query(&q, now);
        let mut want: Vec<&FlowView> = all.iter().filter(|f| pred(f)).collect();
        assert_eq!(page.total, want.len(), "{q:?}");
        want.sort_by_key(|f| std::cmp::Reverse(f.first_ns));
        let got: Vec<u64> = page.flows.iter().map(|f| f.first_ns).collect();
        let exp: Vec<u64> = want.iter().take(25).map(|f| f.first_ns).collect();
        assert_eq!(got, exp, "{q:?}");
    }
}

/// Every sort key, both orders, several pages, with and without a filter (the unfiltered
/// fast path and the general path), against a brute-force sort of every flow: IPv4 and
/// IPv6, both initiator sides, several protocols and statuses, many ties.
#[test]
fn every_sort_key_and_port_ranges_agree_with_brute_force() {
    let mut s = replay_store();
    let mut recs = Vec::new();
    for i in 0..2500u32 {
        let x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let host = |n: u64| -> IpAddr {
            if n % 4 == 0 {
                IpAddr::V6(std::net::Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    (n >> 8) as u16 % 3,
                    (n % 61) as u16,
                ))
            } else {
                v4(10, (n % 3) as u8, (n >> 4) as u8 % 7, (n % 251) as u8)
            }
        };
        let a = host(x >> 3);
        // Same family on both sides.
        let b = match a {
            IpAddr::V6(_) => host((x >> 11) & !3),
            IpAddr::V4(_) => host((x >> 11) | 1),
        };
        let first = T0 + (x >> 20) % (100 * NS);
        let mut r = rec(
            a,
            (x >> 30) as u16 % 40 + 1000,
            b,
            [22, 53, 80, 443, 8080][((x >> 36) % 5) as usize],
            first,
            first + (x >> 40) % (5 * NS),
            1 + (x >> 44) % 4,
            (x >> 50) % 3,
        );
        r.key.proto = [6, 17, 1, 47][((x >> 54) % 4) as usize];
        if x % 5 == 0 {
            r.end = Some(EndReason::Fin);
        }
        recs.push(r);
    }
    s.ingest(&batch(1, T0 + 200 * NS, recs), 0);
    let (now, all) = every_flow(&s);
    let mapped = |a: IpAddr| -> u128 {
        match a {
            IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
            IpAddr::V6(v) => u128::from(v),
        }
    };
    let statuses: Vec<FlowStatus> = all.iter().map(|f| f.status).collect();
    assert!(statuses.contains(&FlowStatus::Closed) && statuses.contains(&FlowStatus::Idle));
    for (name, sort_by) in SortBy::NAMES {
        let key = |f: &FlowView| -> u128 {
            let (src, sport) = f.key.endpoint(f.initiator);
            let (dst, dport) = f.key.endpoint(f.initiator.opposite());
            match sort_by {
                SortBy::Bytes => f.bytes().into(),
                SortBy::Packets => f.packets().into(),
                SortBy::Duration => (f.last_ns - f.first_ns).into(),
                SortBy::FirstSeen => f.first_ns.into(),
                SortBy::LastSeen => f.last_ns.into(),
                SortBy::SrcIp => mapped(src),
                SortBy::DstIp => mapped(dst),
                SortBy::SrcPort => sport.into(),
                SortBy::DstPort => dport.into(),
                SortBy::Protocol => f.key.proto.into(),
                SortBy::Status => match f.status {
                    FlowStatus::Active => 0,
                    FlowStatus::Idle => 1,
                    FlowStatus::Closed => 2,
                },
            }
        };
        type PortCase = (Option<(u16, u16)>, Box<dyn Fn(&FlowView) -> bool>);
        let filters: [PortCase; 4] = [
            // low end above the high end: an empty range
            (Some((2000, 1000)), Box::new(|_| false)),
            (None, Box::new(|_| true)),
            (
                Some((50, 1010)),
                Box::new(|f| {
                    (50..=1010).contains(&f.key.port_a) || (50..=1010).contains(&f.key.port_b)
                }),
            ),
            (
                Some((53, 53)),
                Box::new(|f| f.key.port_a == 53 || f.key.port_b == 53),
            ),
        ];
        for (port, pred) in &filters {
            for order in [SortOrder::Asc, SortOrder::Desc] {
                let mut expect: Vec<u128> = all.iter().filter(|f| pred(f)).map(key).collect();
                expect.sort_unstable();
                if order == SortOrder::Desc {
                    expect.reverse();
                }
                for (offset, limit) in [(0, 10), (0, 1000), (2400, 100), (345, 7)] {
                    let q = FlowQuery {
                        sort_by,
                        order,
                        port_range: *port,
                        limit,
                        offset,
                        ..FlowQuery::default()
                    };
                    let page = s.query(&q, now);
                    assert_eq!(page.total, expect.len(), "{name} {port:?}");
                    let got: Vec<u128> = page.flows.iter().map(key).collect();
                    let want: Vec<u128> = expect.iter().skip(offset).take(limit).copied().collect();
                    assert_eq!(
                        got, want,
                        "{name} {order:?} port {port:?} offset {offset} limit {limit}"
                    );
                }
            }
        }
    }
}
