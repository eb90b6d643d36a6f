// LoadingSpinner.js: loading, empty and error states for a panel, with a retry button.

import { h } from '../../utils/dom.js';

export function loading(text = 'Loading...') {
  return h('div', { class: 'state state-loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function empty(text) {
  return h('div', { class: 'state state-empty', role: 'status' }, text);
}

/** An error message; `onRetry` adds a button, `retryInMs` a countdown line. */
export function errorState(text, { onRetry, retryInMs } = {}) {
  return h('div', { class: 'state state-error', role: 'alert' },
    h('span', { class: 'state-icon', 'aria-hidden': 'true' }, '!'),
    h('span', { class: 'state-text' }, text),
    retryInMs ? h('span', { class: 'state-retry-in' }, ` (retrying in ${Math.ceil(retryInMs / 1000)} s)`) : null,
    onRetry ? h('button', { class: 'btn btn-small', type: 'button', onclick: onRetry }, 'Retry now') : null);
}
