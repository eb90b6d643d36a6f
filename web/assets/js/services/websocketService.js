// websocketService.js: connects the live feed (docs/WEBSOCKET.md) to the application state.
// Topics: metrics (1 s), top_talkers, protocols, health, alerts, and flows (only while the flow
// table is shown, with its filter).

import { WebSocketClient } from '../components/Common/WebSocketClient.js';
import { applyAlert } from '../components/Health/AlertPanel.js';

export const DASHBOARD_TOPICS = ['metrics', 'top_talkers', 'protocols', 'health', 'alerts'];

export class WebSocketService {
  constructor(state, { onFlows, onReconnect, onRecent } = {}) {
    this.state = state;
    this.onRecent = onRecent || (() => {});
    this.onFlows = onFlows || (() => {});
    this.onReconnect = onReconnect || (() => {});
    this.wasOpen = false;
    this.messages = 0;
    this.client = new WebSocketClient({
      onMessage: (m) => this.handle(m),
      onStatus: (s) => this.status(s),
    });
    this.client.subscribe(DASHBOARD_TOPICS);
  }

  start() {
    this.client.connect();
  }

  status(s) {
    const prev = this.state.getState('websocket');
    const next = {
      ...prev,
      state: s.state,
      connected: s.state === 'open',
      reconnecting: s.state === 'reconnecting' || s.state === 'offline',
      attempt: s.attempt || 0,
      retryInMs: s.retryInMs || 0,
    };
    this.state.setState('websocket', next, `ws/${s.state}`);
    if (s.state === 'open') {
      if (this.wasOpen) this.onReconnect(); // "sync latest data" after a reconnect (WS-09)
      this.wasOpen = true;
    }
  }

  handle(msg) {
    this.messages += 1;
    const data = msg.data;
    switch (msg.type) {
      case 'metrics':
        // `recent` repeats the last seconds so late batches correct them (docs/WEBSOCKET.md).
        if (data && Array.isArray(data.recent)) this.onRecent(data.recent);
        if (!data || !data.timestamp) break;
        this.state.setState('dashboard.metrics', data, 'ws/metrics');
        this.state.setState('websocket.lastUpdate', msg.timestamp, 'ws/metrics');
        break;
      case 'top_talkers':
        this.state.setState('dashboard.topTalkers', data, 'ws/top_talkers');
        break;
      case 'protocols':
        this.state.setState('dashboard.protocolBreakdown', data, 'ws/protocols');
        break;
      case 'health':
        this.state.setState('dashboard.health', data, 'ws/health');
        break;
      case 'alert':
        this.state.setState('ui.alerts', applyAlert(this.state.getState('ui.alerts'), data), 'ws/alert');
        break;
      case 'alerts':
        this.state.setState('ui.alerts', Array.isArray(data && data.alerts) ? data.alerts : [], 'ws/alerts');
        break;
      case 'flows':
        this.onFlows(data);
        break;
      case 'error':
        console.warn('websocket: server reported', data);
        break;
      default:
        break; // hello, subscribed, pong, and types added later
    }
  }

  /** Flow updates for the flow table's filter; null stops them. */
  watchFlows(filter) {
    if (filter) this.client.subscribe(['flows'], filter);
    else this.client.unsubscribe(['flows']);
  }

  retryNow() {
    this.client.retryNow();
  }
}
