//! Times store operations in-process on synthetic flows (a development aid for
//! bench/store.sh; numbers vary with the machine).
use netwatch_protocol::{
    CaptureStats, DirCounters, FlowBatch, FlowKey, FlowRecord, Hello, SourceKind, MAGIC,
    PROTOCOL_VERSION,
};
use netwatch_server::store::{FlowQuery, SortBy, SortOrder, Store, StoreConfig};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let now = 1_700_000_000_000_000_000u64;
    let span = 59 * 60 * 1_000_000_000u64;
    let mut s = Store::new(StoreConfig::default());
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        instance: 1,
        interface: "p".into(),
        link_type: 1,
        snaplen: 0,
        source: SourceKind::Live,
        pid: 0,
        started_ns: 0,
        software: "p".into(),
    };
    s.helper_connected(&hello, 0, 0, now);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut seq = 0;
    let mut recs = Vec::new();
    let t0 = Instant::now();
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let client = 10 << 24 | (x % 50_000) as u32;
        let server =
            172 << 24 | 16 << 16 | ((i / 60_000) as u32 & 0xff) << 8 | ((x >> 20) % 100) as u32;
        let (key, side) = FlowKey::from_packet(
            IpAddr::V4(Ipv4Addr::from(client)),
            1024 + (i % 60_000) as u16,
            IpAddr::V4(Ipv4Addr::from(server)),
            443,
            6,
            0,
        );
        let first = now - span + i * (span / n);
        let d = DirCounters {
            packets: 1 + x % 40,
            bytes: (1 + x % 40) * 500,
            tcp_flags: 0,
        };
        recs.push(FlowRecord {
            key,
            initiator: side,
            first_ns: first,
            last_ns: first + 1000,
            ab: d,
            ba: d,
            end: None,
        });
        if recs.len() == 10_000 {
            seq += 1;
            let b = FlowBatch {
                instance: 1,
                seq,
                interval_start_ns: first,
                interval_end_ns: first,
                records: std::mem::take(&mut recs),
                stats: CaptureStats::default(),
            };
            s.ingest(&b, now);
        }
    }
    println!("ingest {:?}", t0.elapsed());
    let time = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..5 {
            f();
        }
        println!("{name}: {:?}", t.elapsed() / 5);
    };
    let flow_queries = [
        (
            "flows default",
            FlowQuery {
                limit: 100,
                ..FlowQuery::default()
            },
        ),
        (
            "flows bytes",
            FlowQuery {
                limit: 100,
                sort_by: SortBy::Bytes,
                ..FlowQuery::default()
            },
        ),
        (
            "flows cidr",
            FlowQuery {
                limit: 100,
                src: Some("10.0.1.0/24".parse().unwrap()),
                ..FlowQuery::default()
            },
        ),
        (
            "flows port 443 packets",
            FlowQuery {
                limit: 50,
                offset: 500,
                port: Some((443, 443)),
                sort_by: SortBy::Packets,
                ..FlowQuery::default()
            },
        ),
        (
            "flows src_ip asc (every flow), 100",
            FlowQuery {
                limit: 100,
                sort_by: SortBy::SrcIp,
                order: SortOrder::Asc,
                ..FlowQuery::default()
            },
        ),
        (
            "flows port 1024-65535 by status",
            FlowQuery {
                limit: 100,
                port_range: Some((1024, 65535)),
                sort_by: SortBy::Status,
                ..FlowQuery::default()
            },
        ),
    ];
    for (name, q) in &flow_queries {
        time(name, &mut || {
            let _ = s.query(q, now);
        });
    }
    time("talkers 1h 50 (series)", &mut || {
        let _ = s.top_talkers(now, 60, 50, 0);
    });
    time("talkers 1h 50 (5 flows)", &mut || {
        let _ = s.top_talkers(now, 60, 50, 5);
    });
    time("talkers 5m 50", &mut || {
        let _ = s.top_talkers(now, 5, 50, 5);
    });
    time("talkers 1h 1", &mut || {
        let _ = s.top_talkers(now, 60, 1, 0);
    });
    time("count active", &mut || {
        let _ = s.count_status(now, netwatch_server::store::FlowStatus::Active);
    });
    let (rows, total) = s.top_talkers(now, 60, 50, 5);
    time("talkers json", &mut || {
        let v = netwatch_server::model::top_talkers(&rows, total);
        let _ = serde_json::to_vec(&serde_json::json!({"t": v}));
    });
}
