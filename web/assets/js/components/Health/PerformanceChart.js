// PerformanceChart.js: server CPU and memory over the last 15 minutes from
// GET /api/v1/metrics/history?duration=15m (UI-22), drawn with uPlot.

import { axisCount, formatBytes } from '../../services/dataFormatter.js';
import { axisTimes, toEpochSeconds } from '../../utils/timeFormatter.js';

export class PerformanceChart {
  constructor(container) {
    this.container = container;
    this.plotEl = container.querySelector('.chart-plot');
    this.plot = null;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.plotEl);
  }

  /** Creates the plot when uPlot is loaded (app.js loads it after the first data); false before. */
  ensure() {
    if (this.plot) return true;
    if (!globalThis.uPlot) return false;
    const rect = this.plotEl.getBoundingClientRect();
    this.plot = new globalThis.uPlot({
      width: Math.max(200, Math.floor(rect.width) || 600),
      height: Math.max(140, Math.floor(rect.height) || 200),
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, cpu: { range: (u, min, max) => [0, Math.max(5, max * 1.2)] }, mem: { range: (u, min, max) => [0, Math.max(1, max * 1.2)] } },
      axes: [
        { stroke: '#7dffa0', values: (u, splits, ax, space, incr) => axisTimes(splits, incr), grid: { stroke: 'rgba(0,255,65,0.08)' }, font: '11px monospace' },
        { scale: 'cpu', stroke: '#FFC107', grid: { stroke: 'rgba(0,255,65,0.08)' }, values: (u, v) => v.map((x) => `${x.toFixed(0)}%`), font: '11px monospace' },
        { scale: 'mem', side: 1, stroke: '#00BCD4', grid: { show: false }, values: (u, v) => v.map((x) => `${axisCount(x / 1048576)}MiB`), size: 64, font: '11px monospace' },
      ],
      series: [
        {},
        { label: 'CPU %', scale: 'cpu', stroke: '#FFC107', width: 1.5, value: (u, v) => (v == null ? '-' : `${v.toFixed(1)}%`) },
        { label: 'Memory', scale: 'mem', stroke: '#00BCD4', width: 1.5, value: (u, v) => (v == null ? '-' : formatBytes(v)) },
      ],
    }, [[], [], []], this.plotEl);
    return true;
  }

  /** uPlot has been loaded: draws what arrived before it. */
  attach() {
    if (this.pending) this.render(this.pending);
  }

  resize() {
    if (!this.plot) return;
    const rect = this.plotEl.getBoundingClientRect();
    if (rect.width < 10 || rect.height < 10) return;
    this.plot.setSize({ width: Math.floor(rect.width), height: Math.floor(rect.height) });
  }

  render(points) {
    this.pending = points;
    if (!this.ensure()) return;
    this.pending = null;
    const t = [];
    const cpu = [];
    const mem = [];
    for (const m of points || []) {
      const x = toEpochSeconds(m.timestamp);
      if (!Number.isFinite(x)) continue;
      t.push(x);
      cpu.push(Number(m.cpuUsage) || 0);
      mem.push(Number(m.memoryUsage) || 0);
    }
    this.plot.setData([t, cpu, mem]);
    this.container.dataset.points = String(t.length);
    this.resize();
  }
}
