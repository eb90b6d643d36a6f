// app.js: the entry point. Builds the components, routes between the three views and feeds
// them from the WebSocket (live) and the REST API (initial load, history, fallback polling).

import { appState } from './AppState.js';
import { api, ApiError, userMessage } from './services/apiClient.js';
import { Poller } from './services/poller.js';
import { WebSocketService } from './services/websocketService.js';
import { StatusIndicator } from './components/Common/StatusIndicator.js';
import { TabNavigation } from './components/Common/TabNavigation.js';
import { errorState, empty } from './components/Common/LoadingSpinner.js';
import { BandwidthChart, RANGES } from './components/Dashboard/BandwidthChart.js';
import { ProtocolBreakdown } from './components/Dashboard/ProtocolBreakdown.js';
import { SystemStatus } from './components/Dashboard/SystemStatus.js';
import { TopTalkers } from './components/Dashboard/TopTalkers.js';
import { FlowTable } from './components/FlowTable/FlowTable.js';
import { AlertPanel } from './components/Health/AlertPanel.js';
import { MetricsGrid } from './components/Health/MetricsGrid.js';
import { PerformanceChart } from './components/Health/PerformanceChart.js';
import { replace, setText } from './utils/dom.js';

const $ = (sel) => document.querySelector(sel);
const state = appState;
const TALKERS = { limit: 10, duration: '5m' };

function firstData(what) {
  const root = document.documentElement;
  if (root.dataset.firstData) return;
  const ms = performance.now(); // since navigation start
  root.dataset.firstData = String(Math.round(ms));
  root.dataset.firstDataFrom = what;
  performance.mark('netwatch:first-data');
  setTimeout(loadCharts, 0); // after the numbers are on screen
}

// uPlot (preloaded by index.html) is evaluated only after the first numbers are rendered: its
// ~20 ms of script evaluation and the chart's first draw are off the path to first data. The
// charts keep their points until then. Loaded at the latest 1 s after start (no data yet).
let chartsRequested = false;
function loadCharts() {
  if (chartsRequested) return;
  chartsRequested = true;
  const s = document.createElement('script');
  s.src = 'vendor/uPlot.iife.min.js';
  s.onload = () => {
    chart.attach();
    perfChart.attach();
  };
  s.onerror = () => setText($('#bandwidth .chart-readout'), 'The chart library failed to load; reload the page');
  document.head.append(s);
}
setTimeout(loadCharts, 1000);

function isLive() {
  return state.getState('websocket.connected') === true;
}

function view() {
  return state.getState('ui.activeTab');
}

/** Puts an error into a panel body; keeps stale data visible with a note when there is some. */
function panelError(el, err, delay, retry, hasData) {
  const text = userMessage(err);
  if (err instanceof ApiError && !err.retryable) console.warn('request failed', { status: err.status, code: err.code, message: err.message, requestId: err.requestId });
  if (hasData) {
    el.dataset.stale = 'true';
    el.title = `${text} (showing the last data received)`;
    return;
  }
  replace(el, errorState(text, { onRetry: retry, retryInMs: delay }));
}

// --- Dashboard -------------------------------------------------------------------------------
const chart = new BandwidthChart($('#bandwidth'), { onRangeChange: (r) => historyPoller[r === 'live' ? 'stop' : 'now']() });
const systemStatus = new SystemStatus($('#system-status'));
const protocols = new ProtocolBreakdown($('#protocols .panel-body'));
const talkers = new TopTalkers($('#talkers .panel-body'), { linkFor: (host) => `#/flows?host=${encodeURIComponent(host)}` });
const alertPanel = new AlertPanel([$('#alert-panel'), $('#alert-banner')]);
const metricsGrid = new MetricsGrid($('#metrics-grid'));
const perfChart = new PerformanceChart($('#perf-chart'));
const talkersEl = $('#talkers .panel-body');
const protocolsEl = $('#protocols .panel-body');
let protocolsFromRest = true;

state.subscribe('dashboard.metrics', (m) => {
  if (!m) return;
  chart.addLivePoint(m);
  systemStatus.render(m, state.getState('dashboard.health'));
  if (view() === 'health') metricsGrid.render(state.getState('dashboard.health'), m);
  firstData('metrics');
});
state.subscribe('dashboard.health', (hl) => {
  systemStatus.render(state.getState('dashboard.metrics'), hl);
  metricsGrid.render(hl, state.getState('dashboard.metrics'));
});
state.subscribe('dashboard.topTalkers', (doc) => {
  delete talkersEl.dataset.stale;
  if (doc && (!doc.top_talkers || doc.top_talkers.length === 0)) {
    replace(talkersEl, empty(noTrafficText()));
  } else talkers.render(doc);
  setText($('#talkers .panel-window'), doc && doc.time_window ? `last ${doc.time_window}` : '');
  firstData('top_talkers');
});
state.subscribe('dashboard.protocolBreakdown', (doc) => {
  delete protocolsEl.dataset.stale;
  protocols.render((doc && doc.protocols) || [], doc && doc.time_window);
});
state.subscribe('ui.alerts', (alerts) => alertPanel.render(alerts || []));

function noTrafficText() {
  const hl = state.getState('dashboard.health');
  if (hl && hl.capture_active === false) return 'No traffic: capture is not active. Is netwatch-capture running and connected to this server?';
  return 'No traffic seen in this window yet';
}

const talkersPoller = new Poller((signal) => api.topTalkers(TALKERS, { signal }), {
  everyMs: 5000,
  enabled: () => !isLive() || !state.getState('dashboard.topTalkers'),
  onData: (doc) => state.setState('dashboard.topTalkers', doc, 'rest/top-talkers'),
  onError: (err, delay) => panelError(talkersEl, err, delay, () => talkersPoller.now(), Boolean(state.getState('dashboard.topTalkers'))),
});
const protocolsPoller = new Poller((signal) => api.protocols({ duration: '5m' }, { signal }), {
  everyMs: 5000,
  enabled: () => protocolsFromRest && (!isLive() || !state.getState('dashboard.protocolBreakdown')),
  onData: (doc) => state.setState('dashboard.protocolBreakdown', doc, 'rest/protocols'),
  onError: (err, delay) => {
    if (err.status === 404) {
      protocolsFromRest = false; // older server: the breakdown comes from the live feed only
      protocolsPoller.stop();
      return;
    }
    panelError(protocolsEl, err, delay, () => protocolsPoller.now(), Boolean(state.getState('dashboard.protocolBreakdown')));
  },
});
const healthPoller = new Poller(async (signal) => {
  const doc = await api.health({ signal });
  if (!doc || typeof doc.status !== 'string') throw new ApiError({ kind: 'server', status: 503, message: 'bad health body' });
  return doc;
}, {
  everyMs: 5000,
  // The live feed pushes health every 5 s; REST is the fallback while it is down. (/health
  // answers 503 while no helper is connected, which the browser would log as an error.)
  enabled: () => !isLive(),
  onData: (doc) => state.setState('dashboard.health', doc, 'rest/health'),
  onError: (err, delay) => {
    if (!state.getState('dashboard.health')) panelError($('#metrics-grid'), err, delay, () => healthPoller.now(), false);
  },
});
const metricsPoller = new Poller((signal) => api.metrics({ signal }), {
  everyMs: 5000,
  enabled: () => !isLive(),
  onData: (m) => state.setState('dashboard.metrics', m, 'rest/metrics'),
  onError: () => {},
});
const backfillPoller = new Poller((signal) => api.history('5m', '1s', { signal }), {
  onData: (doc) => chart.backfill((doc && doc.metrics) || []),
  onError: (err, delay) => {
    if (!chart.live.t.length) setText($('#bandwidth .chart-readout'), `${userMessage(err)}${delay ? ` (retrying in ${Math.ceil(delay / 1000)} s)` : ''}`);
  },
});
const historyPoller = new Poller((signal) => {
  const r = RANGES[chart.range];
  return api.history(r.duration, r.interval, { signal });
}, {
  everyMs: 5000,
  enabled: () => chart.range !== 'live' && view() === 'dashboard',
  onData: (doc) => {
    if (chart.range !== 'live') chart.showHistory((doc && doc.metrics) || []);
  },
  onError: (err, delay) => setText($('#bandwidth .chart-readout'), `${userMessage(err)}${delay ? ` (retrying in ${Math.ceil(delay / 1000)} s)` : ''}`),
});
const perfPoller = new Poller((signal) => api.history('15m', '5s', { signal }), {
  everyMs: 10000,
  enabled: () => view() === 'health',
  onData: (doc) => perfChart.render((doc && doc.metrics) || []),
  onError: (err, delay) => setText($('#perf-chart .chart-readout'), `${userMessage(err)}${delay ? ` (retrying in ${Math.ceil(delay / 1000)} s)` : ''}`),
});

// --- Flows -----------------------------------------------------------------------------------
const ws = new WebSocketService(state, {
  onFlows: (data) => flowTable.onLiveFlows(data),
  onRecent: (points) => chart.backfill(points),
  onReconnect: () => {
    // Sync the latest data after an outage (WS-09): refill the chart and reload what is shown.
    backfillPoller.now();
    if (view() === 'flows') flowTable.load();
    if (view() === 'health') perfPoller.now();
  },
});
const flowTable = new FlowTable($('#view-flows'), state, {
  onFilterChange: (filter, fromRoute) => {
    ws.watchFlows(view() === 'flows' ? filter : null);
    if (!fromRoute) {
      const q = new URLSearchParams(filter).toString();
      const target = `#/flows${q ? `?${q}` : ''}`;
      if (window.location.hash !== target) history.replaceState(null, '', target);
    }
  },
});

// --- Shell -----------------------------------------------------------------------------------
new StatusIndicator(state, {
  conn: $('#conn-status'),
  health: $('#health-status'),
  banner: $('#offline-banner'),
  bannerText: $('#offline-banner .banner-text'),
  retryButton: $('#offline-banner button'),
  onRetry: () => {
    ws.retryNow();
    talkersPoller.now();
    healthPoller.now();
  },
});

let lastFlowRoute = null;
const nav = new TabNavigation(state, {
  tabs: new Map([...document.querySelectorAll('[data-tab]')].map((a) => [a.dataset.tab, a])),
  views: new Map([...document.querySelectorAll('[data-view]')].map((s) => [s.dataset.view, s])),
  onRoute: (name, params) => {
    document.title = `Netwatch · ${name[0].toUpperCase()}${name.slice(1)}`;
    if (name === 'flows') {
      const key = JSON.stringify(params);
      if (key !== lastFlowRoute) {
        lastFlowRoute = key;
        flowTable.setFilter(params, { fromRoute: true });
      } else {
        ws.watchFlows(flowTable.filterParams);
      }
    } else {
      ws.watchFlows(null);
    }
    if (name === 'health') {
      perfPoller.now();
      if (!isLive()) healthPoller.now();
      metricsGrid.render(state.getState('dashboard.health'), state.getState('dashboard.metrics'));
    }
    if (name === 'dashboard') {
      chart.resize();
      if (chart.range !== 'live') historyPoller.now();
    }
    requestAnimationFrame(() => {
      chart.resize();
      perfChart.resize();
    });
  },
});

ws.start();
nav.route();
// The first requests (preloaded by index.html) all start now, in parallel, without waiting for
// the WebSocket; the live feed takes over as soon as it is open.
for (const p of [talkersPoller, metricsPoller, protocolsPoller, backfillPoller]) p.start();
// Health comes from the live feed within a second; REST only if it is not up by then.
setTimeout(() => healthPoller.start(), 1500);
window.netwatch = { state, ws, chart, flowTable }; // for debugging and the browser tests
