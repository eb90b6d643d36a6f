// StatusIndicator.js: the header's live-feed and health pills, and the offline banner shown
// while the WebSocket is down (WS-09).

import { setText } from '../../utils/dom.js';

export class StatusIndicator {
  constructor(state, { conn, health, banner, bannerText, retryButton, onRetry }) {
    this.conn = conn;
    this.health = health;
    this.banner = banner;
    this.bannerText = bannerText;
    retryButton.addEventListener('click', onRetry);
    state.subscribe('websocket', (ws) => this.renderConn(ws));
    state.subscribe('dashboard.health', (hl) => this.renderHealth(hl));
    this.renderConn(state.getState('websocket'));
  }

  renderConn(ws) {
    const s = ws.state || 'connecting';
    const live = s === 'open';
    this.conn.dataset.state = live ? 'live' : s === 'offline' ? 'offline' : 'connecting';
    setText(this.conn, live ? 'LIVE' : s === 'offline' ? 'OFFLINE' : 'CONNECTING');
    this.conn.title = live ? 'Live feed connected' : 'Live feed not connected';
    const showBanner = s === 'offline';
    this.banner.hidden = !showBanner;
    if (showBanner) {
      const secs = ws.retryInMs ? Math.ceil(ws.retryInMs / 1000) : 0;
      setText(this.bannerText, `Connection to the Netwatch server lost. Reconnecting${secs ? ` in ${secs} s` : ''} (attempt ${ws.attempt || 1})...`);
    }
  }

  renderHealth(hl) {
    if (!hl) return;
    const status = String(hl.status || 'unknown');
    this.health.dataset.state = status;
    setText(this.health, status.toUpperCase());
    this.health.title = `Server health: ${status}`;
  }
}
