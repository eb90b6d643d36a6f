//! Load generator for the ingest socket (bench/store.sh, scripts/test.d/20-api.sh).
//!
//! Connects like a live helper (`Hello`, source Live), sends `--flows` distinct synthetic
//! flows whose timestamps spread over the last `--minutes` minutes of wall time, in
//! `FlowBatch`es of `--batch` records, and waits for the last `Ack`. Frames are encoded
//! before the clock starts, so the rate printed is the server's ingest rate (decode,
//! validate, store, ack). `--hold` keeps the connection open afterwards (one empty batch a
//! second) so the server reports a connected helper, until killed.
//!
//! ```text
//! cargo run --release --example nw-load -p netwatch-server -- --socket S --flows 1000000
//! ```

use netwatch_protocol::{
    codec, CaptureStats, DirCounters, FlowBatch, FlowKey, FlowRecord, Hello, Message, SourceKind,
    MAGIC, PROTOCOL_VERSION,
};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    socket: String,
    flows: u64,
    minutes: u64,
    batch: usize,
    hold: bool,
    instance: u64,
}

fn parse() -> Args {
    let mut a = Args {
        socket: "/run/netwatch/capture.sock".into(),
        flows: 100_000,
        minutes: 59,
        batch: 10_000,
        hold: false,
        instance: 0x10ad,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--socket" => a.socket = v(),
            "--flows" => a.flows = v().parse().expect("--flows N"),
            "--minutes" => a.minutes = v().parse().expect("--minutes N"),
            "--batch" => a.batch = v().parse().expect("--batch N"),
            "--instance" => a.instance = v().parse().expect("--instance N"),
            "--hold" => a.hold = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let a = parse();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let span = a.minutes.max(1) * 60 * 1_000_000_000;
    let start = now - span;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    // Flows in time order: flow i starts at start + i * span / flows.
    let mut frames = Vec::new();
    let mut records = Vec::with_capacity(a.batch);
    let mut seq = 0u64;
    let flush = |records: &mut Vec<FlowRecord>, frames: &mut Vec<Vec<u8>>, seq: &mut u64| {
        if records.is_empty() {
            return;
        }
        *seq += 1;
        let end = records.iter().map(|r| r.last_ns).max().unwrap_or(now);
        let b = FlowBatch {
            instance: a.instance,
            seq: *seq,
            interval_start_ns: records.iter().map(|r| r.first_ns).min().unwrap_or(end),
            interval_end_ns: end,
            records: std::mem::take(records),
            stats: CaptureStats::default(),
        };
        frames.push(codec::encode(&Message::FlowBatch(b)).expect("encode"));
    };
    for i in 0..a.flows {
        let r = rng.next();
        // 50,000 client hosts in 10.0.0.0/16; servers 172.16.B.0-99 where B = i / 60,000 and
        // the client port is 1024 + i % 60,000, so every flow key is distinct.
        let client = 10 << 24 | (r % 50_000) as u32;
        let block = (i / 60_000) as u32;
        let server = 172 << 24 | 16 << 16 | (block & 0xff) << 8 | ((r >> 20) % 100) as u32;
        let (proto, dport) = match (r >> 40) % 50 {
            0 => (17u8, 123u16),
            1..=9 => (17, 53),
            10..=30 => (6, 443),
            31..=40 => (6, 80),
            _ => (6, 1024 + ((r >> 48) % 8000) as u16),
        };
        let sport = 1024 + (i % 60_000) as u16;
        let (key, side) = FlowKey::from_packet(
            IpAddr::V4(Ipv4Addr::from(client)),
            sport,
            IpAddr::V4(Ipv4Addr::from(server)),
            dport,
            proto,
            0,
        );
        let first = start + i * (span / a.flows.max(1));
        let pk = 1 + (r >> 8) % 40;
        let out = DirCounters {
            packets: pk,
            bytes: pk * (60 + (r >> 16) % 1400),
            tcp_flags: 0x18,
        };
        let back = DirCounters {
            packets: pk,
            bytes: pk * (60 + (r >> 24) % 1400),
            tcp_flags: 0x18,
        };
        let (ab, ba) = if side == netwatch_protocol::Side::A {
            (out, back)
        } else {
            (back, out)
        };
        records.push(FlowRecord {
            key,
            initiator: side,
            first_ns: first,
            last_ns: first + (r >> 32) % 2_000_000_000,
            ab,
            ba,
            end: None,
        });
        if records.len() == a.batch {
            flush(&mut records, &mut frames, &mut seq);
        }
    }
    flush(&mut records, &mut frames, &mut seq);
    let bytes: usize = frames.iter().map(Vec::len).sum();
    eprintln!(
        "nw-load: {} flows in {} batches, {} MB encoded",
        a.flows,
        frames.len(),
        bytes / 1_000_000
    );

    let mut s = UnixStream::connect(&a.socket).expect("connect to the server socket");
    let hello = Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        instance: a.instance,
        interface: "nw-load".into(),
        link_type: 1,
        snaplen: 65535,
        source: SourceKind::Live,
        pid: std::process::id(),
        started_ns: now,
        software: "nw-load".into(),
    };
    s.write_all(&codec::encode(&Message::Hello(hello)).expect("hello"))
        .expect("send hello");
    let mut reader = s.try_clone().expect("clone");
    let last = seq;
    let acks = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 65536];
        let mut high = 0;
        while high < last {
            if let Ok((m, used)) = codec::decode(&buf) {
                buf.drain(..used);
                if let Message::Ack(a) = m {
                    high = a.seq;
                }
                continue;
            }
            let n = reader.read(&mut chunk).expect("read acks");
            assert!(n > 0, "server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        }
        Instant::now()
    });
    let t0 = Instant::now();
    for f in &frames {
        s.write_all(f).expect("send batch");
    }
    let done = acks.join().expect("ack thread");
    let secs = done.duration_since(t0).as_secs_f64();
    println!(
        "ingest_records={} ingest_seconds={secs:.3} ingest_rate={:.0}",
        a.flows,
        a.flows as f64 / secs
    );
    if a.hold {
        let mut seq = last;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            seq += 1;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let b = FlowBatch {
                instance: a.instance,
                seq,
                interval_start_ns: now - 1_000_000_000,
                interval_end_ns: now,
                records: Vec::new(),
                stats: CaptureStats::default(),
            };
            if s.write_all(&codec::encode(&Message::FlowBatch(b)).expect("enc"))
                .is_err()
            {
                return;
            }
        }
    }
}
