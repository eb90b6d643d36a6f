// dataFormatter.js: human units for the dashboard. Bandwidth is shown in BITS per second (D-07),
// volumes in bytes, packet counts and rates with K/M/G suffixes. Pure functions (unit-tested).

const BIT_UNITS = ['b/s', 'kb/s', 'Mb/s', 'Gb/s', 'Tb/s'];
const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
const COUNT_UNITS = ['', 'K', 'M', 'G', 'T'];

function scaled(value, step, units, digits) {
  let v = Number(value);
  if (!Number.isFinite(v) || v < 0) v = 0;
  let i = 0;
  while (v >= step && i < units.length - 1) {
    v /= step;
    i += 1;
  }
  const text = i === 0 ? String(Math.round(v)) : v.toFixed(v >= 100 ? 0 : digits);
  return { text, unit: units[i] };
}

/** Bits per second (decimal prefixes, as network rates are quoted): 1500 -> "1.50 kb/s". */
export function formatBitsPerSecond(bitsPerSecond) {
  const { text, unit } = scaled(bitsPerSecond, 1000, BIT_UNITS, 2);
  return `${text} ${unit}`;
}

/** Converts a bytes-per-second value from the API into a bits-per-second label. */
export function formatBandwidth(bytesPerSecond) {
  return formatBitsPerSecond(Number(bytesPerSecond) * 8);
}

/** Byte volumes (binary prefixes, labelled KB/MB/GB as users expect): 1536 -> "1.50 KB". */
export function formatBytes(bytes) {
  const { text, unit } = scaled(bytes, 1024, BYTE_UNITS, 2);
  return `${text} ${unit}`;
}

/** Packet and flow counts: 1234 -> "1.23K", 999 -> "999". */
export function formatCount(count) {
  const { text, unit } = scaled(count, 1000, COUNT_UNITS, 2);
  return `${text}${unit}`;
}

/** Packets per second: 1234 -> "1.23K pkt/s". */
export function formatPacketRate(pps) {
  return `${formatCount(pps)} pkt/s`;
}

/** Exact integer with thousands separators, for values that tests compare with the API. */
export function formatInteger(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '0';
  return Math.round(v).toLocaleString('en-US');
}

export function formatPercent(p, digits = 1) {
  const v = Number(p);
  return `${Number.isFinite(v) ? v.toFixed(digits) : '0.0'}%`;
}

/** Milliseconds to a short duration: 950 -> "950 ms", 61000 -> "1m 01s", 3_723_000 -> "1h 02m". */
export function formatDuration(ms) {
  const v = Math.max(0, Math.round(Number(ms) || 0));
  if (v < 1000) return `${v} ms`;
  const s = Math.floor(v / 1000);
  if (s < 60) return `${(v / 1000).toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Axis tick label for bit rates: compact, no decimals beyond what is needed. */
export function axisBits(bitsPerSecond) {
  const { text, unit } = scaled(bitsPerSecond, 1000, BIT_UNITS, 1);
  return `${text.replace(/\.0$/, '')} ${unit}`;
}

export function axisCount(n) {
  const { text, unit } = scaled(n, 1000, COUNT_UNITS, 1);
  return `${text.replace(/\.0$/, '')}${unit}`;
}
