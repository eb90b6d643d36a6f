// pcapgen.mjs: writes a deterministic Ethernet pcap whose packets start at a given wall-clock
// time and span `seconds`, so `netwatch-capture --read F --connect S --pace realtime` replays
// it as live-looking traffic (the store clock follows the capture time). A handful of hosts
// talk TCP, UDP and ICMP, IPv4 and IPv6, with rates that rise and fall over time.

import { writeFileSync } from 'node:fs';

function csum(buf) {
  let s = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += buf[buf.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (~s) & 0xffff;
}

function ipv4Bytes(a) {
  return Buffer.from(a.split('.').map(Number));
}

function ipv6Bytes(a) {
  const [l, r] = a.split('::');
  const left = l ? l.split(':') : [];
  const right = r !== undefined && r ? r.split(':') : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** One Ethernet frame: IPv4/IPv6 with TCP (flags), UDP or ICMP, padded to `size` bytes. */
export function frame({ src, dst, proto, sport = 0, dport = 0, flags = 0x18, size = 100 }) {
  const v6 = src.includes(':');
  const l4len = proto === 6 ? 20 : 8;
  const ipHdr = v6 ? 40 : 20;
  const total = Math.max(size, 14 + ipHdr + l4len);
  const f = Buffer.alloc(total);
  Buffer.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]).copy(f, 0);
  f.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  const ip = 14;
  const payloadLen = total - 14 - ipHdr;
  let l4p = proto;
  if (v6 && proto === 1) l4p = 58;
  if (v6) {
    f.writeUInt32BE(0x60000000, ip);
    f.writeUInt16BE(payloadLen, ip + 4);
    f[ip + 6] = l4p;
    f[ip + 7] = 64;
    ipv6Bytes(src).copy(f, ip + 8);
    ipv6Bytes(dst).copy(f, ip + 24);
  } else {
    f[ip] = 0x45;
    f.writeUInt16BE(total - 14, ip + 2);
    f[ip + 8] = 64;
    f[ip + 9] = l4p;
    ipv4Bytes(src).copy(f, ip + 12);
    ipv4Bytes(dst).copy(f, ip + 16);
    f.writeUInt16BE(csum(f.subarray(ip, ip + 20)), ip + 10);
  }
  const l4 = ip + ipHdr;
  if (l4p === 6) {
    f.writeUInt16BE(sport, l4);
    f.writeUInt16BE(dport, l4 + 2);
    f[l4 + 12] = 0x50;
    f[l4 + 13] = flags;
    f.writeUInt16BE(65535, l4 + 14);
  } else if (l4p === 17) {
    f.writeUInt16BE(sport, l4);
    f.writeUInt16BE(dport, l4 + 2);
    f.writeUInt16BE(payloadLen, l4 + 4);
  } else {
    f[l4] = 8; // echo request (ICMPv6 128 is fine to leave as 8: parsed by protocol only)
    if (l4p === 58) f[l4] = 128;
  }
  return f;
}

const TALKS = [
  { src: '192.168.1.10', dst: '93.184.216.34', proto: 6, sport: 51514, dport: 443, size: 1400, weight: 9 },
  { src: '192.168.1.23', dst: '151.101.1.69', proto: 6, sport: 40222, dport: 443, size: 1200, weight: 5 },
  { src: '192.168.1.23', dst: '192.168.1.1', proto: 17, sport: 53111, dport: 53, size: 90, weight: 3 },
  { src: '192.168.1.77', dst: '172.217.16.142', proto: 17, sport: 50000, dport: 443, size: 1250, weight: 4 },
  { src: '10.0.0.5', dst: '10.0.0.9', proto: 6, sport: 38022, dport: 22, size: 180, weight: 2 },
  { src: '2001:db8::42', dst: '2001:db8:ff::1', proto: 6, sport: 41000, dport: 8443, size: 900, weight: 3 },
  { src: '192.168.1.10', dst: '192.168.1.1', proto: 1, size: 98, weight: 1 },
  { src: '192.168.1.50', dst: '203.0.113.7', proto: 17, sport: 123, dport: 123, size: 90, weight: 1 },
];

/**
 * Writes the capture. Options: startMs (wall time of the first packet), seconds, perSecond
 * (packets per second at the peak), extraFlows (short UDP flows with distinct ports, to fill
 * the flow table). Returns {path, packets, bytes}.
 */
export function writeCapture(path, { startMs = Date.now(), seconds = 30, perSecond = 200, extraFlows = 60 } = {}) {
  const chunks = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  chunks.push(gh);
  let packets = 0;
  let bytes = 0;
  const add = (tMs, fr) => {
    const h = Buffer.alloc(16);
    const us = Math.round(tMs * 1000);
    h.writeUInt32LE(Math.floor(us / 1e6), 0);
    h.writeUInt32LE(us % 1e6, 4);
    h.writeUInt32LE(fr.length, 8);
    h.writeUInt32LE(fr.length, 12);
    chunks.push(h, fr);
    packets += 1;
    bytes += fr.length;
  };
  const totalWeight = TALKS.reduce((s, t) => s + t.weight, 0);
  // SYN of each TCP talk first, so the initiator is known.
  TALKS.filter((t) => t.proto === 6).forEach((t, i) => add(startMs + i, frame({ ...t, flags: 0x02, size: 74 })));
  for (let s = 0; s < seconds; s += 1) {
    const level = 0.55 + 0.45 * Math.sin((s / seconds) * Math.PI * 2.5);
    const n = Math.max(4, Math.round(perSecond * level));
    for (let k = 0; k < n; k += 1) {
      const t = startMs + s * 1000 + Math.floor((k * 1000) / n) + 5;
      let pick = (k * 7919 + s * 104729) % totalWeight;
      const talk = TALKS.find((x) => (pick -= x.weight) < 0) || TALKS[0];
      const reverse = k % 3 === 0;
      const f = reverse
        ? frame({ ...talk, src: talk.dst, dst: talk.src, sport: talk.dport, dport: talk.sport, size: talk.proto === 6 ? 66 : talk.size })
        : frame(talk);
      add(t, f);
    }
    // a few short DNS-like flows each second, so the flow table grows and pages
    for (let j = 0; j < Math.ceil(extraFlows / seconds); j += 1) {
      const port = 20000 + s * 50 + j;
      const t = startMs + s * 1000 + 500 + j;
      add(t, frame({ src: '192.168.1.23', dst: '192.168.1.1', proto: 17, sport: port, dport: 53, size: 80 + j }));
      add(t + 1, frame({ src: '192.168.1.1', dst: '192.168.1.23', proto: 17, sport: 53, dport: port, size: 140 + j }));
    }
  }
  writeFileSync(path, Buffer.concat(chunks));
  return { path, packets, bytes };
}
