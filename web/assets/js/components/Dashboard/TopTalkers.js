// TopTalkers.js: the top bandwidth consumers by host (D-20), refreshed by the live feed; a click
// (or Enter) on a host opens the flow table filtered to that host (UI-11).

import { formatBytes, formatCount, formatInteger, formatPercent } from '../../services/dataFormatter.js';
import { h, replace } from '../../utils/dom.js';
import { empty } from '../Common/LoadingSpinner.js';

export class TopTalkers {
  constructor(el, { linkFor }) {
    this.el = el;
    this.linkFor = linkFor;
  }

  render(doc) {
    const talkers = (doc && doc.top_talkers) || [];
    if (talkers.length === 0) {
      replace(this.el, empty('No traffic seen yet in this window'));
      return;
    }
    const body = talkers.map((t) => {
      const host = String(t.identifier ?? '');
      const name = t.displayName && t.displayName !== host ? String(t.displayName) : '';
      const share = Number(t.percentageOfTotal) || 0;
      return h('tr', { dataset: { host, bytes: String(t.totalBytes) } },
        h('td', { class: 'num rank' }, String(t.rank ?? '')),
        h('td', { class: 'host' },
          h('a', { href: this.linkFor(host), title: `Show the flows of ${host}` }, host),
          name ? h('span', { class: 'muted' }, ` ${name}`) : null),
        h('td', { class: 'num bytes', title: `${formatInteger(t.totalBytes)} bytes` }, formatBytes(t.totalBytes)),
        h('td', { class: 'num packets', title: `${formatInteger(t.totalPackets)} packets` }, formatCount(t.totalPackets)),
        h('td', { class: 'num flows' }, formatInteger(t.flowCount)),
        h('td', { class: 'share' },
          h('span', { class: 'share-bar', 'aria-hidden': 'true' }, h('span', { class: 'share-fill', style: `width:${Math.min(100, share).toFixed(1)}%` })),
          h('span', { class: 'share-text' }, formatPercent(share))));
    });
    replace(this.el, h('table', { class: 'data-table talkers' },
      h('caption', { class: 'sr-only' }, 'Top talkers by bytes sent and received'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', class: 'num' }, '#'),
        h('th', { scope: 'col' }, 'Host'),
        h('th', { scope: 'col', class: 'num' }, 'Bytes'),
        h('th', { scope: 'col', class: 'num' }, 'Packets'),
        h('th', { scope: 'col', class: 'num' }, 'Flows'),
        h('th', { scope: 'col' }, 'Share'))),
      h('tbody', {}, body)));
  }
}
