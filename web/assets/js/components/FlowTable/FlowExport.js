// FlowExport.js: "Export CSV" downloads flows.csv for the current filter and sort (UI-20) from
// GET /api/v1/flows?...&format=csv, which streams every matching flow (D-10).

import { api, authHeaders } from '../../services/apiClient.js';

export class FlowExport {
  constructor(link) {
    this.link = link;
    this.params = {};
    link.addEventListener('click', (e) => this.onClick(e));
  }

  update(params) {
    this.params = params;
    this.link.href = api.csvUrl(params);
  }

  async onClick(e) {
    const headers = authHeaders();
    if (!headers.Authorization) return; // a plain link download; nothing to add
    // With a token the download must carry the header: fetch it and save the blob.
    e.preventDefault();
    const res = await fetch(this.link.href, { headers });
    if (!res.ok) return;
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = 'flows.csv';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
