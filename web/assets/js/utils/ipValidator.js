// ipValidator.js: client-side checks of addresses and CIDR prefixes before they reach the API
// (the server validates again; this only gives the user an immediate message).

const IPV4_OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${IPV4_OCTET}(\\.${IPV4_OCTET}){3}$`);

export function isIPv4(s) {
  return typeof s === 'string' && IPV4.test(s);
}

export function isIPv6(s) {
  if (typeof s !== 'string' || s.length < 2 || s.length > 45 || !s.includes(':')) return false;
  let text = s;
  let groupsNeeded = 8;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") counts as two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return false;
    text = `${text.slice(0, lastColon + 1)}0`;
    groupsNeeded = 7;
  }
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groupOk = (g) => /^[0-9a-fA-F]{1,4}$/.test(g);
  const parts = (h) => (h === '' ? [] : h.split(':'));
  if (halves.length === 1) {
    const g = parts(halves[0]);
    return g.length === groupsNeeded && g.every(groupOk);
  }
  const left = parts(halves[0]);
  const right = parts(halves[1]);
  return left.length + right.length < groupsNeeded && [...left, ...right].every(groupOk);
}

export function isIP(s) {
  return isIPv4(s) || isIPv6(s);
}

/** An address or an address/prefix with a prefix length valid for its family. */
export function isIPOrCidr(s) {
  if (typeof s !== 'string') return false;
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s);
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(len)) return false;
  const n = Number(len);
  if (isIPv4(addr)) return n <= 32;
  if (isIPv6(addr)) return n <= 128;
  return false;
}

/** A port number 0-65535 (matched on either side by the API). */
export function isPort(s) {
  return /^\d{1,5}$/.test(String(s)) && Number(s) <= 65535;
}

/** A port range `LOW-HIGH` (both 0-65535, LOW <= HIGH), or null. */
export function parsePortRange(s) {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(String(s));
  if (!m || !isPort(m[1]) || !isPort(m[2])) return null;
  const [low, high] = [Number(m[1]), Number(m[2])];
  return low <= high ? { low, high } : null;
}
