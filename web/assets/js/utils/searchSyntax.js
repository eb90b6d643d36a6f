// searchSyntax.js: the flow table's search box, e.g. `src_ip:192.168.1.0/24 protocol:tcp`,
// translated into the REST query parameters of GET /api/v1/flows. Values are validated here so
// the user gets an immediate message; the server validates again (400 with the seed's body).

import { isIPOrCidr, isPort, parsePortRange } from './ipValidator.js';

const PROTOCOL_NAMES = ['tcp', 'udp', 'icmp', 'icmpv6', 'gre', 'esp', 'ah', 'sctp', 'igmp', 'ospf'];
const STATUSES = ['active', 'idle', 'closed'];

function validProtocol(v) {
  return PROTOCOL_NAMES.includes(v.toLowerCase()) || (/^\d{1,3}$/.test(v) && Number(v) <= 255);
}

/** Known keys: name in the search box -> [query parameter, validator, message]. */
export const SEARCH_KEYS = {
  src_ip: ['src_ip', isIPOrCidr, 'an IP address or CIDR'],
  dst_ip: ['dst_ip', isIPOrCidr, 'an IP address or CIDR'],
  host: ['host', isIPOrCidr, 'an IP address or CIDR'],
  ip: ['host', isIPOrCidr, 'an IP address or CIDR'],
  port: ['port', (v) => isPort(v) || parsePortRange(v) !== null, 'a port number 0-65535 or a range such as 1024-65535'],
  protocol: ['protocol', validProtocol, 'a protocol name (tcp, udp, icmp...) or number 0-255'],
  proto: ['protocol', validProtocol, 'a protocol name (tcp, udp, icmp...) or number 0-255'],
  status: ['status', (v) => STATUSES.includes(v.toLowerCase()), 'active, idle or closed'],
};

/**
 * Parses the search text. Returns {params: {name: value}, errors: [string]}.
 * Bare words are understood by their shape: an address or CIDR means `host`, a number or range
 * means `port`, a protocol name means `protocol`, a status word means `status`.
 */
export function parseSearch(text) {
  const params = {};
  const errors = [];
  const tokens = String(text || '').trim().split(/\s+/).filter(Boolean);
  for (const token of tokens) {
    const colon = token.indexOf(':');
    const looksKeyed = colon > 0 && /^[a-z_]+$/i.test(token.slice(0, colon));
    if (looksKeyed && !(token.slice(0, colon).toLowerCase() in SEARCH_KEYS) && !isIPOrCidr(token)) {
      errors.push(`Unknown search key "${token.slice(0, colon)}" (use ${Object.keys(SEARCH_KEYS).join(', ')})`);
      continue;
    }
    if (looksKeyed && token.slice(0, colon).toLowerCase() in SEARCH_KEYS) {
      const key = token.slice(0, colon).toLowerCase();
      const value = token.slice(colon + 1);
      const [param, valid, what] = SEARCH_KEYS[key];
      if (!value || !valid(value)) {
        errors.push(`${key}: "${value}" is not ${what}`);
      } else if (param === 'port' && !isPort(value)) {
        setRange(params, parsePortRange(value));
      } else {
        params[param] = param === 'protocol' || param === 'status' ? value.toLowerCase() : value;
      }
      continue;
    }
    if (isIPOrCidr(token)) params.host = token;
    else if (isPort(token)) params.port = token;
    else if (parsePortRange(token)) setRange(params, parsePortRange(token));
    else if (validProtocol(token) && !/^\d+$/.test(token)) params.protocol = token.toLowerCase();
    else if (STATUSES.includes(token.toLowerCase())) params.status = token.toLowerCase();
    else errors.push(`Cannot understand "${token}": try src_ip:10.0.0.0/8 port:443 protocol:tcp`);
  }
  return { params, errors };
}

/** A port range becomes the API's port_min/port_max (a port of either side inside it). */
function setRange(params, { low, high }) {
  params.port_min = String(low);
  params.port_max = String(high);
}

/** Inverse of parseSearch for the parameters it produces (used to show a filter as text). */
export function formatSearch(params) {
  const { port_min: low, port_max: high, ...rest } = params;
  const parts = Object.entries(rest)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}:${v}`);
  if ((low ?? '') !== '' || (high ?? '') !== '') parts.push(`port:${low ?? 0}-${high ?? 65535}`);
  return parts.join(' ');
}
