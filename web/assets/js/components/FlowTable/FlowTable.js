// FlowTable.js: the flow analysis view (UI-14..21): server-side filtering, sorting (D-11) and
// pagination, expandable rows, CSV export, live "updated flows" notice from the WebSocket, and a
// clear message with retry and backoff on every failure (UI-26).

import { api, backoffDelay, userMessage } from '../../services/apiClient.js';
import { formatInteger } from '../../services/dataFormatter.js';
import { h, replace, setText } from '../../utils/dom.js';
import { empty, errorState, loading } from '../Common/LoadingSpinner.js';
import { FlowExport } from './FlowExport.js';
import { FlowFilters } from './FlowFilters.js';
import { COLUMNS, detailRow, flowRow } from './FlowRow.js';

export const NO_FLOWS = 'No flows match criteria';

export class FlowTable {
  constructor(root, state, { onFilterChange }) {
    this.root = root;
    this.state = state;
    this.onFilterChange = onFilterChange || (() => {});
    this.body = root.querySelector('.flow-body');
    this.info = root.querySelector('.page-info');
    this.prev = root.querySelector('[data-action=prev]');
    this.next = root.querySelector('[data-action=next]');
    this.pageSize = root.querySelector('[name=limit]');
    this.liveNote = root.querySelector('.live-note');
    this.autoRefresh = root.querySelector('[name=auto]');
    this.filterParams = {};
    this.sortBy = 'last_seen';
    this.sortOrder = 'desc';
    this.offset = 0;
    this.limit = Number(this.pageSize.value) || 100;
    this.expanded = new Set();
    this.flows = [];
    this.pending = 0;
    this.attempt = 0;
    this.retryTimer = 0;
    this.ctrl = null;
    this.updatesSinceLoad = 0;
    this.lastAutoRefresh = 0;
    this.filters = new FlowFilters(root.querySelector('.flow-filters'), {
      onApply: (p) => this.setFilter(p),
    });
    this.exporter = new FlowExport(root.querySelector('[data-action=export]'));
    this.prev.addEventListener('click', () => this.page(-1));
    this.next.addEventListener('click', () => this.page(1));
    this.pageSize.addEventListener('change', () => {
      this.limit = Number(this.pageSize.value) || 100;
      this.offset = 0;
      this.load();
    });
    this.liveNote.querySelector('button').addEventListener('click', () => this.load());
    this.renderHeader();
  }

  queryParams() {
    return { ...this.filterParams, sort_by: this.sortBy, sort_order: this.sortOrder, limit: this.limit, offset: this.offset };
  }

  /** Filter from the URL (#/flows?host=...) or the filter form. */
  setFilter(params, { fromRoute = false } = {}) {
    this.filterParams = { ...params };
    if (fromRoute) this.filters.set(params);
    this.offset = 0;
    this.expanded.clear();
    this.onFilterChange(this.filterParams, fromRoute);
    this.load();
  }

  sortOn(col) {
    if (!col.sort) return;
    if (this.sortBy === col.sort) this.sortOrder = this.sortOrder === 'desc' ? 'asc' : 'desc';
    else {
      this.sortBy = col.sort;
      this.sortOrder = col.num || col.sort.endsWith('_seen') ? 'desc' : 'asc';
    }
    this.offset = 0;
    this.renderHeader();
    this.load();
  }

  page(dir) {
    const total = this.state.getState('flowTable.pagination.total');
    const next = this.offset + dir * this.limit;
    if (next < 0 || (dir > 0 && next >= total)) return;
    this.offset = next;
    this.expanded.clear();
    this.load();
  }

  renderHeader() {
    const tr = this.root.querySelector('.flow-head');
    replace(tr, COLUMNS.map((c) => {
      const active = this.sortBy === c.sort;
      const sortState = active ? (this.sortOrder === 'asc' ? 'ascending' : 'descending') : 'none';
      return h('th', { scope: 'col', class: c.num ? 'num' : '', 'aria-sort': sortState, dataset: { col: c.key } },
        !c.sort ? c.title : h('button', {
          type: 'button',
          class: 'sort-btn',
          dataset: { sort: c.sort },
          title: `Sort by ${c.title}`,
          onclick: () => this.sortOn(c),
        }, c.title, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (this.sortOrder === 'asc' ? ' ▲' : ' ▼') : ' ↕')));
    }));
  }

  async load() {
    clearTimeout(this.retryTimer);
    if (this.ctrl) this.ctrl.abort();
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const params = this.queryParams();
    this.exporter.update({ ...this.filterParams, sort_by: this.sortBy, sort_order: this.sortOrder });
    this.root.dataset.loading = 'true';
    if (!this.flows.length) replace(this.body, h('tr', {}, h('td', { colspan: String(COLUMNS.length) }, loading('Loading flows...'))));
    try {
      const doc = await api.flows(params, { signal: ctrl.signal });
      if (ctrl.signal.aborted) return;
      this.attempt = 0;
      this.updatesSinceLoad = 0;
      this.liveNote.hidden = true;
      this.flows = Array.isArray(doc.flows) ? doc.flows : [];
      const pg = doc.pagination || {};
      this.state.setState('flowTable.pagination', {
        offset: Number(pg.offset ?? this.offset), limit: Number(pg.limit ?? this.limit),
        total: Number(pg.total_count ?? this.flows.length), hasMore: Boolean(pg.has_more),
      }, 'flows/loaded');
      this.render();
    } catch (err) {
      if (ctrl.signal.aborted || err.kind === 'aborted') return;
      this.showError(err);
    } finally {
      if (this.ctrl === ctrl) {
        this.ctrl = null;
        this.root.dataset.loading = 'false';
      }
    }
  }

  showError(err) {
    const text = userMessage(err);
    this.flows = [];
    this.root.dataset.error = err.kind || 'error';
    if (err.retryable) {
      const delay = err.retryAfter ? err.retryAfter * 1000 : backoffDelay(this.attempt, { cap: 15000 });
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.load(), delay);
      replace(this.body, h('tr', {}, h('td', { colspan: String(COLUMNS.length) }, errorState(text, { onRetry: () => { this.attempt = 0; this.load(); }, retryInMs: delay }))));
    } else {
      // A 400: the filter is wrong; say so next to the filter, no automatic retry.
      this.filters.showServerError(text);
      replace(this.body, h('tr', {}, h('td', { colspan: String(COLUMNS.length) }, errorState(text))));
    }
    setText(this.info, '');
  }

  render() {
    delete this.root.dataset.error;
    const pg = this.state.getState('flowTable.pagination');
    if (this.flows.length === 0) {
      replace(this.body, h('tr', {}, h('td', { colspan: String(COLUMNS.length) }, empty(NO_FLOWS))));
    } else {
      const rows = [];
      for (const f of this.flows) {
        const key = String(f.flowKey);
        const open = this.expanded.has(key);
        rows.push(flowRow(f, {
          expanded: open,
          onToggle: () => {
            if (this.expanded.has(key)) this.expanded.delete(key);
            else this.expanded.add(key);
            this.render();
            const again = this.body.querySelector(`tr[data-flow-key="${CSS.escape(key)}"]`);
            if (again) again.focus();
          },
        }));
        if (open) rows.push(detailRow(f));
      }
      replace(this.body, rows);
    }
    const from = pg.total === 0 ? 0 : pg.offset + 1;
    const to = pg.offset + this.flows.length;
    setText(this.info, `${formatInteger(from)}–${formatInteger(to)} of ${formatInteger(pg.total)} flows`);
    this.root.dataset.total = String(pg.total);
    this.prev.disabled = pg.offset <= 0;
    this.next.disabled = !pg.hasMore && to >= pg.total;
  }

  /** A `flows` message from the WebSocket for the current filter. */
  onLiveFlows(data) {
    const n = Array.isArray(data && data.flows) ? data.flows.length : 0;
    if (!n) return;
    this.updatesSinceLoad += n;
    if (this.autoRefresh.checked && Date.now() - this.lastAutoRefresh > 2000 && !this.ctrl) {
      this.lastAutoRefresh = Date.now();
      this.load();
      return;
    }
    this.liveNote.hidden = false;
    setText(this.liveNote.querySelector('.live-count'), `${formatInteger(this.updatesSinceLoad)} flow updates since this page was loaded`);
  }
}
