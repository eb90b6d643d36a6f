// FlowFilters.js: the search box (seed syntax `src_ip:192.168.1.0/24 protocol:tcp`), protocol
// and status selectors. Produces the query parameters of GET /api/v1/flows, validated first.

import { formatSearch, parseSearch } from '../../utils/searchSyntax.js';
import { setText } from '../../utils/dom.js';

export class FlowFilters {
  constructor(form, { onApply }) {
    this.form = form;
    this.search = form.querySelector('[name=search]');
    this.protocol = form.querySelector('[name=protocol]');
    this.status = form.querySelector('[name=status]');
    this.message = form.querySelector('.filter-message');
    this.onApply = onApply;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.apply();
    });
    this.protocol.addEventListener('change', () => this.apply());
    this.status.addEventListener('change', () => this.apply());
    form.querySelector('[data-action=clear]').addEventListener('click', () => {
      this.search.value = '';
      this.protocol.value = 'all';
      this.status.value = 'all';
      this.apply();
    });
  }

  /** Current filter as query parameters, or null (and a message) when the input is invalid. */
  params() {
    const { params, errors } = parseSearch(this.search.value);
    if (errors.length) {
      setText(this.message, errors.join('; '));
      this.message.dataset.level = 'error';
      this.search.setAttribute('aria-invalid', 'true');
      return null;
    }
    this.search.removeAttribute('aria-invalid');
    setText(this.message, '');
    const out = { ...params };
    if (this.protocol.value !== 'all') out.protocol = this.protocol.value;
    if (this.status.value !== 'all') out.status = this.status.value;
    return out;
  }

  apply() {
    const p = this.params();
    if (p) this.onApply(p);
  }

  /** Shows a filter that came from elsewhere (a top talker click, the URL). */
  set(params) {
    const { protocol, status, ...rest } = params;
    const known = [...this.protocol.options].map((o) => o.value);
    if (protocol && known.includes(protocol)) this.protocol.value = protocol;
    else {
      this.protocol.value = 'all';
      if (protocol) rest.protocol = protocol;
    }
    this.status.value = status || 'all';
    this.search.value = formatSearch(rest);
  }

  showServerError(text) {
    setText(this.message, text);
    this.message.dataset.level = 'error';
  }
}
