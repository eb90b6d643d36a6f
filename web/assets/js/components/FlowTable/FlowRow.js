// FlowRow.js: one flow in the table, and its expanded detail row (full 5-tuple, per-direction
// counters and every other field the API returns; UI-19).

import { formatBytes, formatCount, formatDuration, formatInteger } from '../../services/dataFormatter.js';
import { formatClock, formatDateTime } from '../../utils/timeFormatter.js';
import { h } from '../../utils/dom.js';

/** Columns: key, header, sort key on the server (every column sorts there, D-11), cell renderer. */
export const COLUMNS = [
  { key: 'srcIP', title: 'Source', sort: 'src_ip', cell: (f) => f.srcIP },
  { key: 'srcPort', title: 'Src port', sort: 'src_port', num: true, cell: (f) => portText(f, f.srcPort) },
  { key: 'dstIP', title: 'Destination', sort: 'dst_ip', cell: (f) => f.dstIP },
  { key: 'dstPort', title: 'Dst port', sort: 'dst_port', num: true, cell: (f) => portText(f, f.dstPort) },
  { key: 'protocolName', title: 'Proto', sort: 'protocol', cell: (f) => String(f.protocolName || f.protocol).toUpperCase() },
  { key: 'bytes', title: 'Bytes', sort: 'bytes', num: true, cell: (f) => formatBytes(f.bytes), exact: (f) => `${formatInteger(f.bytes)} bytes` },
  { key: 'packets', title: 'Packets', sort: 'packets', num: true, cell: (f) => formatCount(f.packets), exact: (f) => `${formatInteger(f.packets)} packets` },
  { key: 'firstSeen', title: 'First seen', sort: 'first_seen', cell: (f) => formatClock(f.firstSeen), exact: (f) => formatDateTime(f.firstSeen) },
  { key: 'lastSeen', title: 'Last seen', sort: 'last_seen', cell: (f) => formatClock(f.lastSeen), exact: (f) => formatDateTime(f.lastSeen) },
  { key: 'duration', title: 'Duration', sort: 'duration', num: true, cell: (f) => formatDuration(f.duration) },
  { key: 'status', title: 'Status', sort: 'status', cell: (f) => f.status },
];

function portText(f, port) {
  const p = Number(f.protocol);
  return p === 6 || p === 17 || p === 132 ? String(port) : port ? String(port) : '-';
}

const MAIN_KEYS = new Set(['flowKey', 'srcIP', 'dstIP', 'srcPort', 'dstPort', 'protocol', 'protocolName', 'bytes', 'packets', 'firstSeen', 'lastSeen', 'duration', 'status']);

export function flowRow(f, { expanded, onToggle }) {
  const tr = h('tr', {
    class: `flow-row status-${String(f.status || '')}`,
    tabindex: '0',
    'aria-expanded': expanded ? 'true' : 'false',
    dataset: { flowKey: String(f.flowKey ?? '') },
    onclick: onToggle,
    onkeydown: (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        onToggle();
      }
    },
  }, COLUMNS.map((c) => h('td', {
    class: `${c.num ? 'num ' : ''}col-${c.key}`,
    dataset: { col: c.key, value: String(f[c.key] ?? '') },
    title: c.exact ? c.exact(f) : null,
  }, String(c.cell(f) ?? ''))));
  return tr;
}

function pretty(key, value) {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'object') return JSON.stringify(value);
  if (/bytes/i.test(key) && Number.isFinite(Number(value))) return `${formatInteger(value)} (${formatBytes(value)})`;
  if (/(packets|pkts)/i.test(key) && Number.isFinite(Number(value))) return formatInteger(value);
  return String(value);
}

export function detailRow(f) {
  const tuple = `${f.srcIP}:${f.srcPort} → ${f.dstIP}:${f.dstPort} ${String(f.protocolName || '').toUpperCase()} (${f.protocol})`;
  const extra = Object.entries(f).filter(([k]) => !MAIN_KEYS.has(k));
  return h('tr', { class: 'flow-detail' }, h('td', { colspan: String(COLUMNS.length) },
    h('dl', { class: 'detail-grid' },
      h('dt', {}, '5-tuple'), h('dd', { class: 'mono' }, tuple),
      h('dt', {}, 'Flow key'), h('dd', { class: 'mono' }, String(f.flowKey ?? '-')),
      h('dt', {}, 'Totals'), h('dd', {}, `${formatInteger(f.bytes)} bytes, ${formatInteger(f.packets)} packets`),
      h('dt', {}, 'Seen'), h('dd', {}, `${formatDateTime(f.firstSeen)} → ${formatDateTime(f.lastSeen)} (${formatDuration(f.duration)})`),
      h('dt', {}, 'Status'), h('dd', {}, String(f.status ?? '-')),
      extra.map(([k, v]) => [h('dt', {}, k), h('dd', { class: 'mono' }, pretty(k, v))]))));
}
