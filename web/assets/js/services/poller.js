// poller.js: runs a REST request now and again every `everyMs` (0 = once); on failure it
// retries with capped exponential backoff (UI-26) and reports the error and the next attempt.

import { backoffDelay } from './apiClient.js';

export class Poller {
  constructor(fn, { everyMs = 0, onData, onError, enabled = () => true }) {
    this.fn = fn;
    this.everyMs = everyMs;
    this.onData = onData;
    this.onError = onError;
    this.enabled = enabled;
    this.attempt = 0;
    this.timer = 0;
    this.running = false;
    this.stopped = true;
    this.ctrl = null;
  }

  start() {
    this.stopped = false;
    this.run();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ctrl) this.ctrl.abort();
  }

  /** Runs now (a retry button, a reconnect), resetting the backoff. */
  now() {
    this.attempt = 0;
    this.stopped = false;
    this.run();
  }

  async run() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (!this.enabled()) {
      if (this.everyMs) this.timer = setTimeout(() => this.run(), this.everyMs);
      return;
    }
    if (this.ctrl) this.ctrl.abort();
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    try {
      const data = await this.fn(ctrl.signal);
      if (ctrl.signal.aborted) return;
      this.attempt = 0;
      this.onData(data);
      if (this.everyMs && !this.stopped) this.timer = setTimeout(() => this.run(), this.everyMs);
    } catch (err) {
      if (ctrl.signal.aborted || err.kind === 'aborted') return;
      if (err.retryable === false) {
        this.onError(err, 0);
        return;
      }
      const delay = err.retryAfter ? err.retryAfter * 1000 : backoffDelay(this.attempt, { cap: 15000 });
      this.attempt += 1;
      this.onError(err, delay);
      if (!this.stopped) this.timer = setTimeout(() => this.run(), delay);
    } finally {
      if (this.ctrl === ctrl) this.ctrl = null;
    }
  }
}
