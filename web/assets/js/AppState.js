// AppState.js: the seed's central state (001 "State Management Architecture"): path-based
// subscriptions, immutable updates (each set copies the objects along the path), action names
// recorded in a bounded debug history. Transient UI state (hover, focus) stays in components.

const HISTORY_LIMIT = 200;

export class AppState {
  constructor(initial) {
    this.state = initial || AppState.defaults();
    this.subscribers = new Map();
    this.history = [];
  }

  static defaults() {
    return {
      websocket: { connected: false, reconnecting: false, lastUpdate: null, attempt: 0 },
      dashboard: {
        metrics: null,
        series: null,
        flows: [],
        topTalkers: null,
        protocolBreakdown: null,
        health: null,
      },
      flowTable: {
        flows: [],
        filters: { searchTerm: '', protocol: 'all', status: 'all', sortBy: 'last_seen', sortOrder: 'desc' },
        pagination: { offset: 0, limit: 100, total: 0, hasMore: false },
      },
      ui: { activeTab: 'dashboard', loading: false, error: null, alerts: [] },
    };
  }

  /** Subscribes to a path ("dashboard.metrics"); fires for changes at, above or below it. */
  subscribe(path, callback) {
    if (!this.subscribers.has(path)) this.subscribers.set(path, new Set());
    this.subscribers.get(path).add(callback);
    return () => this.subscribers.get(path).delete(callback);
  }

  getState(path) {
    if (!path) return this.state;
    return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), this.state);
  }

  /** Immutable update of one path; `action` names the change for the debug history. */
  setState(path, value, action = 'set') {
    const oldValue = this.getState(path);
    if (Object.is(oldValue, value)) return;
    this.state = AppState.assoc(this.state, path.split('.'), value);
    this.history.push({ timestamp: Date.now(), action, path });
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
    this.notify(path, value, oldValue);
  }

  static assoc(obj, keys, value) {
    if (keys.length === 0) return value;
    const [head, ...rest] = keys;
    const base = obj && typeof obj === 'object' ? obj : {};
    return { ...base, [head]: AppState.assoc(base[head], rest, value) };
  }

  notify(path, value, oldValue) {
    for (const [subPath, callbacks] of this.subscribers) {
      const related = subPath === path || path.startsWith(`${subPath}.`) || subPath.startsWith(`${path}.`);
      if (!related) continue;
      const v = subPath === path ? value : this.getState(subPath);
      for (const cb of [...callbacks]) {
        try {
          cb(v, subPath === path ? oldValue : undefined);
        } catch (err) {
          console.error('state subscriber failed', { path: subPath, error: err });
        }
      }
    }
  }
}

export const appState = new AppState();
