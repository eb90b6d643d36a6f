// BandwidthChart.js: live bandwidth in bits per second and packets per second (UI-08/09, D-07),
// drawn with uPlot (vendored from npm). Live mode keeps the last 5 minutes at 1 s from the
// WebSocket `metrics` messages; 15 m and 60 m come from GET /api/v1/metrics/history.
// uPlot is loaded after the first numbers are on screen (app.js): until then the points are
// kept and the readout shows the latest value; `attach()` draws them once uPlot is there.

import { axisBits, axisCount, formatBitsPerSecond, formatPacketRate } from '../../services/dataFormatter.js';
import { axisTimes, toEpochSeconds } from '../../utils/timeFormatter.js';

const LIVE_SECONDS = 300;
export const RANGES = {
  live: { label: '5 m live', duration: '5m', interval: '1s' },
  '15m': { label: '15 m', duration: '15m', interval: '5s' },
  '60m': { label: '60 m', duration: '1h', interval: '15s' },
};

/** A sliding window of [t, bps, pps] points keyed by whole seconds (pure; unit-tested). */
export class LiveSeries {
  constructor(windowSeconds = LIVE_SECONDS) {
    this.window = windowSeconds;
    this.t = [];
    this.bps = [];
    this.pps = [];
  }

  /** Adds or replaces the point at second `t`; keeps points in order and inside the window. */
  put(t, bitsPerSecond, packetsPerSecond) {
    const n = this.t.length;
    if (n > 0 && t <= this.t[n - 1]) {
      const i = this.t.lastIndexOf(t);
      if (i >= 0) {
        this.bps[i] = bitsPerSecond;
        this.pps[i] = packetsPerSecond;
      } else {
        // Older than the newest point and not present: insert in order (backfill from history).
        let j = n - 1;
        while (j >= 0 && this.t[j] > t) j -= 1;
        this.t.splice(j + 1, 0, t);
        this.bps.splice(j + 1, 0, bitsPerSecond);
        this.pps.splice(j + 1, 0, packetsPerSecond);
      }
    } else {
      this.t.push(t);
      this.bps.push(bitsPerSecond);
      this.pps.push(packetsPerSecond);
    }
    const newest = this.t[this.t.length - 1];
    let drop = 0;
    while (drop < this.t.length && this.t[drop] <= newest - this.window) drop += 1;
    if (drop) {
      this.t.splice(0, drop);
      this.bps.splice(0, drop);
      this.pps.splice(0, drop);
    }
  }

  data() {
    return [this.t, this.bps, this.pps];
  }
}

export class BandwidthChart {
  constructor(container, { onRangeChange } = {}) {
    this.container = container;
    this.plotEl = container.querySelector('.chart-plot');
    this.readout = container.querySelector('.chart-readout');
    this.live = new LiveSeries();
    this.range = 'live';
    this.onRangeChange = onRangeChange || (() => {});
    this.updates = 0;
    this.plot = null;
    this.shown = this.live.data();
    for (const btn of container.querySelectorAll('[data-range]')) {
      btn.addEventListener('click', () => this.setRange(btn.dataset.range));
    }
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.plotEl);
  }

  /** Creates the plot once uPlot (globalThis.uPlot) is loaded, with the points seen so far. */
  attach() {
    if (this.plot || !globalThis.uPlot) return;
    const rect = this.plotEl.getBoundingClientRect();
    const opts = {
      width: Math.max(200, Math.floor(rect.width) || 600),
      height: Math.max(160, Math.floor(rect.height) || 260),
      class: 'nw-uplot',
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: { x: { time: true }, bps: { range: (u, min, max) => [0, Math.max(1000, max * 1.1)] }, pps: { range: (u, min, max) => [0, Math.max(10, max * 1.1)] } },
      axes: [
        { stroke: '#7dffa0', values: (u, splits, ax, space, incr) => axisTimes(splits, incr), grid: { stroke: 'rgba(0,255,65,0.08)' }, ticks: { stroke: 'rgba(0,255,65,0.25)' }, font: '11px monospace' },
        { scale: 'bps', stroke: '#00FF41', grid: { stroke: 'rgba(0,255,65,0.08)' }, ticks: { stroke: 'rgba(0,255,65,0.25)' }, values: (u, vals) => vals.map(axisBits), size: 70, font: '11px monospace' },
        { scale: 'pps', side: 1, stroke: '#00BCD4', grid: { show: false }, ticks: { stroke: 'rgba(0,188,212,0.3)' }, values: (u, vals) => vals.map((v) => `${axisCount(v)}p/s`), size: 64, font: '11px monospace' },
      ],
      series: [
        {},
        { label: 'Bandwidth (bits/s)', scale: 'bps', stroke: '#00FF41', fill: 'rgba(0, 255, 65, 0.10)', width: 1.5, points: { show: false } },
        { label: 'Packets/s', scale: 'pps', stroke: '#00BCD4', width: 1.25, dash: [4, 3], points: { show: false } },
      ],
      hooks: { setCursor: [(u) => this.showCursor(u)] },
    };
    this.plot = new globalThis.uPlot(opts, this.shown, this.plotEl);
  }

  resize() {
    if (!this.plot) return;
    const rect = this.plotEl.getBoundingClientRect();
    if (rect.width < 10 || rect.height < 10) return; // hidden view
    this.plot.setSize({ width: Math.floor(rect.width), height: Math.floor(rect.height) });
  }

  showCursor(u) {
    const i = u.cursor.idx;
    if (i === null || i === undefined || !u.data[0].length) {
      this.renderReadout();
      return;
    }
    this.readout.textContent = `${new Date(u.data[0][i] * 1000).toLocaleTimeString()}  ` +
      `${formatBitsPerSecond(u.data[1][i])}  ${formatPacketRate(u.data[2][i])}`;
  }

  renderReadout() {
    const n = this.live.t.length;
    if (this.range !== 'live') {
      this.readout.textContent = `history: ${RANGES[this.range].label}`;
    } else if (n === 0) {
      this.readout.textContent = 'waiting for data...';
    } else {
      this.readout.textContent = `now ${formatBitsPerSecond(this.live.bps[n - 1])}  ${formatPacketRate(this.live.pps[n - 1])}`;
    }
  }

  /** One live metrics message ({timestamp, bytesPerSecond, packetsPerSecond}). */
  addLivePoint(m) {
    const t = Math.floor(toEpochSeconds(m.timestamp));
    if (!Number.isFinite(t)) return;
    this.live.put(t, Number(m.bytesPerSecond) * 8 || 0, Number(m.packetsPerSecond) || 0);
    if (this.range === 'live') this.redraw(this.live.data());
  }

  /** Backfill of the live window from /metrics/history?duration=5m&interval=1s. */
  backfill(points) {
    for (const m of points) {
      const t = Math.floor(toEpochSeconds(m.timestamp));
      if (Number.isFinite(t)) this.live.put(t, Number(m.bytesPerSecond) * 8 || 0, Number(m.packetsPerSecond) || 0);
    }
    if (this.range === 'live') this.redraw(this.live.data());
  }

  showHistory(points) {
    const t = [];
    const bps = [];
    const pps = [];
    for (const m of points) {
      const x = toEpochSeconds(m.timestamp);
      if (!Number.isFinite(x)) continue;
      t.push(x);
      bps.push(Number(m.bytesPerSecond) * 8 || 0);
      pps.push(Number(m.packetsPerSecond) || 0);
    }
    this.redraw([t, bps, pps]);
  }

  redraw(data) {
    this.shown = data;
    if (this.plot) this.plot.setData(data);
    this.updates += 1;
    const n = data[0].length;
    this.container.dataset.points = String(n);
    this.container.dataset.updates = String(this.updates);
    this.container.dataset.last = n ? String(data[0][n - 1]) : '';
    this.renderReadout();
  }

  setRange(range) {
    if (!RANGES[range] || range === this.range) return;
    this.range = range;
    for (const btn of this.container.querySelectorAll('[data-range]')) {
      btn.setAttribute('aria-pressed', btn.dataset.range === range ? 'true' : 'false');
    }
    this.container.dataset.range = range;
    if (range === 'live') this.redraw(this.live.data());
    this.onRangeChange(range, RANGES[range]);
  }
}
