//! Prints the parser's verdict for every frame of a capture, one line per frame, in the same
//! format as `tests/fixtures/tools/oracle_frames.py` (for differential debugging):
//!
//! `N kind [proto src sport dst dport vlan nonfirst ip_len]`
//!
//! Usage: `cargo run -p netwatch-capture --example classify -- FILE`

use netwatch_capture::offline::fmt_addr;
use netwatch_capture::parse::{parse_ethernet, Verdict};
use netwatch_capture::source::{FrameSource, PcapFileSource};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: classify FILE")?;
    let mut src = PcapFileSource::open(path.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n = 0u64;
    while let Some(f) = src.next()? {
        n += 1;
        match parse_ethernet(f.data, f.wire_len) {
            Verdict::Flow(p) => writeln!(
                out,
                "{n} ip {} {} {} {} {} {} {} {}",
                p.proto,
                fmt_addr(p.v6, &p.src),
                p.sport,
                fmt_addr(p.v6, &p.dst),
                p.dport,
                p.vlan,
                u8::from(p.nonfirst_fragment),
                p.ip_len
            )?,
            Verdict::NonIp | Verdict::Truncated(_) => writeln!(out, "{n} non_ip")?,
            Verdict::IpInvalid(_) => writeln!(out, "{n} ip_invalid")?,
        }
    }
    Ok(())
}
