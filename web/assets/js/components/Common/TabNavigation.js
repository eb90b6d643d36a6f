// TabNavigation.js: hash routes #/dashboard, #/flows, #/health (UI-02), tab buttons and the
// view shortcuts (1/2/3 outside text fields, Alt+1/2/3 anywhere; D-27).

import { installShortcuts } from '../../utils/keyboardHandler.js';

export const ROUTES = ['dashboard', 'flows', 'health'];

/** Parses "#/flows?host=10.0.0.1" into {view: 'flows', params: {host: '10.0.0.1'}}. */
export function parseHash(hash) {
  const raw = String(hash || '').replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = (q >= 0 ? raw.slice(0, q) : raw).split('/')[0];
  const params = Object.fromEntries(new URLSearchParams(q >= 0 ? raw.slice(q + 1) : ''));
  return { view: ROUTES.includes(path) ? path : 'dashboard', params };
}

export class TabNavigation {
  constructor(state, { tabs, views, onRoute }) {
    this.state = state;
    this.tabs = tabs; // Map view -> <a>
    this.views = views; // Map view -> <section>
    this.onRoute = onRoute;
    window.addEventListener('hashchange', () => this.route());
    installShortcuts({
      1: () => this.go('dashboard'),
      2: () => this.go('flows'),
      3: () => this.go('health'),
    });
  }

  go(view, params) {
    const q = params ? new URLSearchParams(params).toString() : '';
    const target = `#/${view}${q ? `?${q}` : ''}`;
    if (window.location.hash === target) this.route();
    else window.location.hash = target;
  }

  route() {
    const { view, params } = parseHash(window.location.hash);
    for (const [name, tab] of this.tabs) {
      const active = name === view;
      tab.setAttribute('aria-selected', active ? 'true' : 'false');
      tab.classList.toggle('active', active);
      tab.tabIndex = active ? 0 : -1;
    }
    for (const [name, section] of this.views) section.hidden = name !== view;
    this.state.setState('ui.activeTab', view, 'route');
    this.onRoute(view, params);
  }
}
