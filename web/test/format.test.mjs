import test from 'node:test';
import assert from 'node:assert/strict';
import {
  formatBandwidth, formatBitsPerSecond, formatBytes, formatCount, formatDuration, formatInteger,
  formatPacketRate, axisBits,
} from '../assets/js/services/dataFormatter.js';

test('bandwidth is shown in bits per second with decimal prefixes (D-07)', () => {
  assert.equal(formatBitsPerSecond(0), '0 b/s');
  assert.equal(formatBitsPerSecond(999), '999 b/s');
  assert.equal(formatBitsPerSecond(1500), '1.50 kb/s');
  assert.equal(formatBitsPerSecond(2_500_000), '2.50 Mb/s');
  assert.equal(formatBitsPerSecond(1_000_000_000), '1.00 Gb/s');
  assert.equal(formatBitsPerSecond(123_400_000), '123 Mb/s');
  // bytes per second from the API become bits
  assert.equal(formatBandwidth(125_000_000), '1.00 Gb/s');
  assert.equal(formatBandwidth(1), '8 b/s');
});

test('bad input never produces NaN on the page', () => {
  assert.equal(formatBitsPerSecond(undefined), '0 b/s');
  assert.equal(formatBytes(-5), '0 B');
  assert.equal(formatCount('x'), '0');
  assert.equal(formatInteger(null), '0');
  assert.equal(formatDuration(undefined), '0 ms');
});

test('bytes, counts, packet rates, durations', () => {
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.50 KB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5.00 GB');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(1234), '1.23K');
  assert.equal(formatCount(2_000_000), '2.00M');
  assert.equal(formatPacketRate(1500), '1.50K pkt/s');
  assert.equal(formatInteger(1234567), '1,234,567');
  assert.equal(formatDuration(950), '950 ms');
  assert.equal(formatDuration(1500), '1.50 s');
  assert.equal(formatDuration(61_000), '1m 01s');
  assert.equal(formatDuration(3_723_000), '1h 02m');
  assert.equal(axisBits(2_000_000), '2 Mb/s');
});
