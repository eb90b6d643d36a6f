// MetricsGrid.js: the health view's numbers (UI-22): GET /api/v1/health (status, capture,
// drops, evictions, helpers, CPU, memory: D-09) and the latest SystemMetrics. Fields the server
// adds later are shown too, flattened as "section / name".

import { formatBytes, formatInteger, formatPercent } from '../../services/dataFormatter.js';
import { formatDateTime } from '../../utils/timeFormatter.js';
import { h, replace } from '../../utils/dom.js';

const KNOWN = new Set(['status', 'timestamp', 'capture_active', 'interface_status']);

/** Flattens nested objects into [["helpers / 0 / interface", "eth0"], ...] (pure). */
export function flatten(obj, prefix = '', out = []) {
  for (const [k, v] of Object.entries(obj || {})) {
    const name = prefix ? `${prefix} / ${k}` : k;
    if (v && typeof v === 'object') {
      if (Array.isArray(v) && v.length === 0) out.push([name, 'none']);
      else flatten(v, name, out);
    } else out.push([name, v]);
  }
  return out;
}

function humanise(name, value) {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (/(rss|bytes)$/i.test(name)) return `${formatBytes(value)} (${formatInteger(value)})`;
    if (/(cpu_percent|cpu)$/i.test(name)) return formatPercent(value);
    return formatInteger(value);
  }
  if (/(timestamp|_at|time)$/i.test(name) && !Number.isNaN(Date.parse(value))) return formatDateTime(value);
  return String(value);
}

function level(name, value) {
  if (/(drop|evict|error|lost|refused)/i.test(name) && Number(value) > 0) return 'warn';
  if (/cpu/i.test(name) && Number(value) > 80) return 'warn';
  return '';
}

export class MetricsGrid {
  constructor(el) {
    this.el = el;
  }

  render(health, metrics) {
    if (!health && !metrics) return;
    const hl = health || {};
    const status = String(hl.status || 'unknown');
    const head = h('div', { class: 'health-summary' },
      h('div', { class: `stat stat-${status === 'healthy' ? 'ok' : status === 'degraded' ? 'warn' : 'error'}`, dataset: { stat: 'status' } },
        h('div', { class: 'stat-label' }, 'Status'), h('div', { class: 'stat-value' }, status.toUpperCase())),
      h('div', { class: `stat stat-${hl.capture_active ? 'ok' : 'error'}`, dataset: { stat: 'capture' } },
        h('div', { class: 'stat-label' }, 'Capture'), h('div', { class: 'stat-value' }, hl.capture_active ? 'ACTIVE' : 'INACTIVE'),
        h('div', { class: 'stat-sub' }, `interface ${hl.interface_status || 'unknown'}`)),
      metrics ? h('div', { class: `stat stat-${Number(metrics.cpuUsage) > 80 ? 'warn' : 'ok'}`, dataset: { stat: 'cpu' } },
        h('div', { class: 'stat-label' }, 'Server CPU'), h('div', { class: 'stat-value' }, formatPercent(metrics.cpuUsage)),
        h('div', { class: 'stat-sub' }, `RSS ${formatBytes(metrics.memoryUsage)}`)) : null,
      Array.isArray(hl.helpers) ? h('div', { class: `stat stat-${hl.helpers.some((x) => x.connected) ? 'ok' : 'error'}`, dataset: { stat: 'helpers' } },
        h('div', { class: 'stat-label' }, 'Capture helpers'),
        h('div', { class: 'stat-value' }, `${hl.helpers.filter((x) => x.connected).length} connected`),
        h('div', { class: 'stat-sub' }, hl.helpers.map((x) => `${x.interface || '?'} (${x.source || '?'})`).join(', ') || 'none')) : null,
      hl.evictions ? h('div', { class: `stat stat-${Number(hl.evictions.memory_total) > 0 ? 'warn' : 'ok'}`, dataset: { stat: 'evictions' } },
        h('div', { class: 'stat-label' }, 'Flows stored / evicted'),
        h('div', { class: 'stat-value' }, `${formatInteger(hl.flows_stored)} / ${formatInteger(hl.evictions.memory_total)}`),
        h('div', { class: 'stat-sub' }, `${formatInteger(hl.evictions.retention_expired)} expired by retention`)) : null,
      metrics ? h('div', { class: `stat stat-${Number(metrics.droppedPackets) > 0 ? 'error' : 'ok'}`, dataset: { stat: 'drops' } },
        h('div', { class: 'stat-label' }, 'Dropped packets'), h('div', { class: 'stat-value' }, formatInteger(metrics.droppedPackets)),
        h('div', { class: 'stat-sub' }, `${formatInteger(metrics.captureErrors)} capture errors`)) : null);
    const rows = flatten(Object.fromEntries(Object.entries(hl).filter(([k]) => !KNOWN.has(k))));
    const table = rows.length ? h('table', { class: 'data-table kv' },
      h('caption', { class: 'sr-only' }, 'Health details'),
      h('tbody', {}, rows.map(([k, v]) => h('tr', { class: level(k, v) ? `row-${level(k, v)}` : '', dataset: { key: k } },
        h('th', { scope: 'row' }, k), h('td', { class: 'mono' }, humanise(k, v)))))) : null;
    replace(this.el, head, table,
      hl.timestamp ? h('p', { class: 'muted small' }, `Reported at ${formatDateTime(hl.timestamp)}`) : null);
  }
}
