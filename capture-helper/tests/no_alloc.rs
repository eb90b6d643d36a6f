//! Zero allocations per packet in steady state: a counting global allocator (global only in
//! this test binary) watches the whole offline hot path (pcap reader, parser, flow table,
//! expiry, draining) over 100k packets of existing flows and of new flows within capacity.

use netwatch_capture::collector::{Batch, Collector};
use netwatch_capture::flow::TableConfig;
use netwatch_capture::source::{FrameSource, PcapFileSource};
use netwatch_capture::sys::alloc::CountingAllocator;
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator::new();

/// An Ethernet/IPv4 or IPv6 TCP/UDP frame of flow `n`, sent by either side.
fn frame(n: u32, reverse: bool, v6: bool) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    let proto = if n % 3 == 0 { 17u8 } else { 6 };
    let (mut a, mut b) = (n.to_be_bytes().to_vec(), vec![192, 0, 2, (n % 251) as u8]);
    let (mut pa, mut pb) = (10_000 + (n % 50_000) as u16, 443u16);
    if reverse {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut pa, &mut pb);
    }
    let l4: Vec<u8> = if proto == 6 {
        [
            &pa.to_be_bytes()[..],
            &pb.to_be_bytes(),
            &[0; 8],
            &[0x50, 0x10, 0, 0, 0, 0, 0, 0],
        ]
        .concat()
    } else {
        [&pa.to_be_bytes()[..], &pb.to_be_bytes(), &[0, 8, 0, 0]].concat()
    };
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&u16::try_from(l4.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        for addr in [&a, &b] {
            f.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0]);
            f.extend_from_slice(addr);
        }
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&u16::try_from(20 + l4.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&a);
        f.extend_from_slice(&b);
    }
    f.extend_from_slice(&l4);
    f
}

/// A little-endian µs pcap of `frames` (flow ids), one every microsecond from `t0_us`.
fn pcap(frames: &[(u32, bool, bool)], t0_us: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, &(n, rev, v6)) in frames.iter().enumerate() {
        let f = frame(n, rev, v6);
        let t = t0_us + i as u64;
        let len = u32::try_from(f.len()).unwrap();
        for v in [
            u32::try_from(t / 1_000_000).unwrap(),
            u32::try_from(t % 1_000_000).unwrap(),
            len,
            len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&f);
    }
    out
}

fn run(collector: &mut Collector, file: Vec<u8>, sink: &mut u64) {
    let mut src = PcapFileSource::new(std::io::Cursor::new(file)).expect("valid pcap");
    let mut last = 0;
    while let Some(f) = src.next().expect("frame") {
        collector.process(&f, f.ts_ns);
        last = f.ts_ns;
    }
    collector.expire(last);
    collector.drain_with(|r| *sink += r.ab.packets + r.ba.packets);
}

#[test]
fn steady_state_allocates_nothing_per_packet() {
    let mut collector = Collector::new(TableConfig {
        capacity: 50_000,
        ..TableConfig::default()
    });
    let t0 = 1_700_000_000_000_000u64;
    // Warm-up: 20k flows (a third IPv6), both directions.
    let warm: Vec<_> = (0..20_000u32)
        .map(|n| (n, n % 2 == 1, n % 3 == 1))
        .collect();
    let mut sink = 0;
    run(&mut collector, pcap(&warm, t0), &mut sink);
    assert_eq!(collector.stats().table_occupancy, 20_000);

    // Measured: 100k packets over the existing flows plus 10k new flows.
    let measured: Vec<_> = (0..100_000u32)
        .map(|i| {
            if i % 10 == 0 {
                (20_000 + i / 10, false, i % 3 == 0)
            } else {
                (i % 20_000, i % 7 == 0, i % 20_000 % 3 == 1)
            }
        })
        .collect();
    let file = pcap(&measured, t0 + 1_000_000);
    let mut src = PcapFileSource::new(std::io::Cursor::new(file)).expect("valid pcap");

    // The path live and offline capture take: frames counted in prefetched batches.
    let mut batch = Batch::default();
    GLOBAL.start();
    let mut last = 0;
    while let Some(f) = src.next().expect("frame") {
        batch.push(&mut collector, &f, f.ts_ns, |_, _| {});
        last = f.ts_ns;
    }
    batch.flush(&mut collector, |_, _| {});
    collector.expire(last);
    collector.drain_with(|r| sink += r.ab.packets + r.ba.packets);
    let allocations = GLOBAL.stop();

    let stats = collector.stats();
    assert_eq!(stats.frames, 120_000);
    assert_eq!(stats.flow_frames, 120_000);
    assert_eq!(stats.table_occupancy, 30_000);
    assert_eq!(sink, 120_000, "every packet drained exactly once");
    assert_eq!(
        allocations, 0,
        "allocations while processing 100k packets in steady state"
    );
}

/// Control: the counter sees allocations made while counting (so a zero above means
/// something), and none made before `start`.
#[test]
fn the_counter_counts() {
    let before: Vec<u8> = Vec::with_capacity(64);
    GLOBAL.start();
    let during: Vec<u64> = std::hint::black_box(Vec::with_capacity(128));
    let boxed = std::hint::black_box(Box::new(7u32));
    let counted = GLOBAL.stop();
    drop((before, during, boxed));
    assert_eq!(counted, 2);
}
