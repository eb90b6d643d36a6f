// WebSocketClient.js: one reconnecting WebSocket to /api/v1/ws (docs/WEBSOCKET.md). It
// resubscribes after every reconnect, reconnects with capped exponential backoff and jitter,
// and treats a silent connection (no message for `staleMs`) as dead.

import { backoffDelay } from '../../services/apiClient.js';

export const WS_PATH = '/api/v1/ws';
export const SUBPROTOCOL = 'netwatch.v1';

export class WebSocketClient {
  constructor({ url, onMessage, onStatus, staleMs = 10000, pingMs = 15000, backoff = {} } = {}) {
    this.url = url || WebSocketClient.defaultUrl();
    this.onMessage = onMessage || (() => {});
    this.onStatus = onStatus || (() => {});
    this.staleMs = staleMs;
    this.pingMs = pingMs;
    this.backoff = { base: 500, cap: 10000, ...backoff };
    this.topics = new Set();
    this.filter = null;
    this.ws = null;
    this.attempt = 0;
    this.closedByUser = false;
    this.timers = { reconnect: 0, stale: 0, ping: 0 };
    this.lastMessageAt = 0;
    // Hook for token auth (D-13): returns the token or null. The token travels as the
    // subprotocol entry `bearer.<token>` next to `netwatch.v1`, never in the URL.
    this.tokenProvider = () => null;
  }

  static defaultUrl() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}${WS_PATH}`;
  }

  connect() {
    this.closedByUser = false;
    this.open();
  }

  open() {
    clearTimeout(this.timers.reconnect);
    let ws;
    try {
      const token = this.tokenProvider();
      ws = new WebSocket(this.url, token ? [SUBPROTOCOL, `bearer.${token}`] : [SUBPROTOCOL]);
    } catch (err) {
      console.warn('websocket: cannot open', err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.onStatus({ state: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    ws.onopen = () => {
      this.sendSubscription();
      this.lastMessageAt = Date.now();
      this.armStale();
      clearInterval(this.timers.ping);
      this.timers.ping = setInterval(() => this.sendRaw({ type: 'ping' }), this.pingMs);
    };
    ws.onmessage = (ev) => {
      this.lastMessageAt = Date.now();
      this.armStale();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('websocket: ignoring a malformed message');
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'hello') {
        this.attempt = 0;
        this.onStatus({ state: 'open', attempt: 0, hello: msg.data });
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      this.cleanupSocket();
      if (this.closedByUser) {
        this.onStatus({ state: 'closed', attempt: 0 });
        return;
      }
      this.onStatus({ state: 'offline', attempt: this.attempt, code: ev.code, reason: ev.reason });
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // A close event always follows; nothing to log (a server that is down is an expected state).
    };
  }

  cleanupSocket() {
    clearTimeout(this.timers.stale);
    clearInterval(this.timers.ping);
    if (this.ws) {
      this.ws.onopen = null;
      this.ws.onmessage = null;
      this.ws.onclose = null;
      this.ws.onerror = null;
    }
    this.ws = null;
  }

  armStale() {
    clearTimeout(this.timers.stale);
    this.timers.stale = setTimeout(() => {
      // No data and no pong for too long: the connection is dead even if TCP has not noticed.
      const ws = this.ws;
      this.cleanupSocket();
      if (ws) {
        try {
          ws.close(4000, 'stale');
        } catch {
          // already closing
        }
      }
      this.onStatus({ state: 'offline', attempt: this.attempt, reason: 'stale' });
      this.scheduleReconnect();
    }, this.staleMs);
  }

  scheduleReconnect() {
    clearTimeout(this.timers.reconnect);
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.onStatus({ state: 'offline', attempt: this.attempt, retryInMs: delay });
    this.timers.reconnect = setTimeout(() => this.open(), delay);
  }

  /** Reconnect now (the "retry" button), resetting the backoff. */
  retryNow() {
    this.attempt = 0;
    if (!this.ws) this.open();
  }

  sendRaw(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  sendSubscription() {
    if (this.topics.size === 0) return;
    const msg = { type: 'subscribe', topics: [...this.topics] };
    if (this.filter) msg.filter = this.filter;
    this.sendRaw(msg);
  }

  subscribe(topics, filter) {
    for (const t of topics) this.topics.add(t);
    if (filter !== undefined) this.filter = filter;
    this.sendSubscription();
  }

  unsubscribe(topics) {
    for (const t of topics) this.topics.delete(t);
    this.sendRaw({ type: 'unsubscribe', topics });
  }

  close() {
    this.closedByUser = true;
    clearTimeout(this.timers.reconnect);
    if (this.ws) this.ws.close(1000, 'bye');
  }
}
