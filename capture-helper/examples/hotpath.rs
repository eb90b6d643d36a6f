//! The per-frame cost of the capture loop's user-space work (classification, flow hash,
//! batched table update) on frames held in memory, without the ring or the kernel: a
//! development aid for `bench/live.sh`'s helper column, which it isolates from wake-ups and
//! cross-core cache traffic.
//!
//! Frames: 64-byte Ethernet/IPv4/UDP, laid out 160 bytes apart as in a TPACKET_V3 block,
//! cycling over FLOWS source ports (the traffic of `bench/live.sh`).
//!
//! Usage: `cargo run --release -p netwatch-capture --example hotpath -- [FLOWS] [MILLIONS]`

use netwatch_capture::collector::{Batch, Collector};
use netwatch_capture::flow::TableConfig;
use netwatch_capture::source::Frame;
use std::time::Instant;

/// Distance between frames, as the kernel lays out 64-byte frames in a block.
const STRIDE: usize = 160;
/// Offset of the Ethernet header in each slot (after a tpacket3_hdr and sockaddr_ll).
const MAC: usize = 82;

fn udp_frame(sport: u16) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&50u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[10, 98, 0, 2]);
    ip[16..20].copy_from_slice(&[10, 98, 0, 1]);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[38..40].copy_from_slice(&30u16.to_be_bytes());
    f
}

fn main() {
    let mut args = std::env::args().skip(1);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let millions: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    // One "block" of frames; the loop walks it again and again.
    let nframes = 6_500usize.max(flows);
    let mut block = vec![0u8; nframes * STRIDE];
    for i in 0..nframes {
        let sport = 10_000 + u16::try_from(i % flows).unwrap_or(0);
        block[i * STRIDE + MAC..i * STRIDE + MAC + 64].copy_from_slice(&udp_frame(sport));
    }
    let mut c = Collector::new(TableConfig::default());
    let mut batch = Batch::default();
    let total = millions * 1_000_000;
    let mut ts = 1_700_000_000_000_000_000u64;
    let start = Instant::now();
    let mut done = 0u64;
    while done < total {
        for i in 0..nframes {
            let at = i * STRIDE + MAC;
            let frame = Frame {
                data: &block[at..at + 64],
                wire_len: 64,
                ts_ns: ts,
            };
            batch.push(&mut c, &frame, ts, |_, _| {});
            ts += 5_000;
        }
        batch.flush(&mut c, |_, _| {});
        done += nframes as u64;
    }
    let ns = start.elapsed().as_nanos() as f64 / done as f64;
    let s = c.stats();
    println!(
        "{flows} flows, {done} frames: {ns:.2} ns/frame ({} flows in the table, {} flow frames)",
        s.table_occupancy, s.flow_frames
    );
}
