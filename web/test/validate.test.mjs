import test from 'node:test';
import assert from 'node:assert/strict';
import { isIPOrCidr, isIPv4, isIPv6, isPort, parsePortRange } from '../assets/js/utils/ipValidator.js';
import { formatSearch, parseSearch } from '../assets/js/utils/searchSyntax.js';

test('IPv4 and IPv6 addresses and prefixes', () => {
  for (const ok of ['0.0.0.0', '192.168.1.1', '255.255.255.255']) assert.ok(isIPv4(ok), ok);
  for (const bad of ['256.1.1.1', '1.2.3', '01.2.3.4x', '1.2.3.4.5', '']) assert.ok(!isIPv4(bad), bad);
  for (const ok of ['::1', '::', 'fe80::1', '2001:db8::8a2e:370:7334', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8']) assert.ok(isIPv6(ok), ok);
  for (const bad of ['1:2:3:4:5:6:7:8:9', ':::1', '2001:db8::g', '1::2::3', '12345::1']) assert.ok(!isIPv6(bad), bad);
  assert.ok(isIPOrCidr('192.168.1.0/24'));
  assert.ok(isIPOrCidr('10.0.0.1'));
  assert.ok(isIPOrCidr('2001:db8::/32'));
  assert.ok(!isIPOrCidr('192.168.1.0/33'));
  assert.ok(!isIPOrCidr('2001:db8::/129'));
  assert.ok(!isIPOrCidr('192.168.1.0/'));
  assert.ok(!isIPOrCidr('host/24'));
});

test('ports', () => {
  assert.ok(isPort('0'));
  assert.ok(isPort('65535'));
  assert.ok(!isPort('1000-2000'));
  assert.ok(!isPort('70000'));
  assert.ok(!isPort('2000-1000'));
  assert.ok(!isPort('-1'));
  assert.ok(!isPort('http'));
  assert.deepEqual(parsePortRange('1000-2000'), { low: 1000, high: 2000 });
  assert.deepEqual(parsePortRange('0-65535'), { low: 0, high: 65535 });
  assert.deepEqual(parsePortRange('53-53'), { low: 53, high: 53 });
  assert.equal(parsePortRange('2000-1000'), null);
  assert.equal(parsePortRange('1000-70000'), null);
  assert.equal(parsePortRange('1000'), null);
  assert.equal(parsePortRange('a-b'), null);
});

test('port ranges become port_min/port_max, keyed or bare, and round-trip', () => {
  assert.deepEqual(parseSearch('port:1024-65535 tcp').params, { port_min: '1024', port_max: '65535', protocol: 'tcp' });
  assert.deepEqual(parseSearch('10.0.0.1 1-1023').params, { host: '10.0.0.1', port_min: '1', port_max: '1023' });
  assert.match(parseSearch('port:2000-1000').errors[0], /port: "2000-1000" is not a port number 0-65535 or a range/);
  const p = { host: '10.0.0.1', port_min: '1024', port_max: '2048' };
  assert.equal(formatSearch(p), 'host:10.0.0.1 port:1024-2048');
  assert.deepEqual(parseSearch(formatSearch(p)).params, p);
  assert.equal(formatSearch({ port_min: '8000' }), 'port:8000-65535');
});

test("the seed's search example becomes the seed's query parameters", () => {
  const { params, errors } = parseSearch('src_ip:192.168.1.0/24 protocol:tcp');
  assert.deepEqual(errors, []);
  assert.deepEqual(params, { src_ip: '192.168.1.0/24', protocol: 'tcp' });
});

test('bare words are understood by their shape', () => {
  const { params, errors } = parseSearch('  10.0.0.5   443 UDP active ');
  assert.deepEqual(errors, []);
  assert.deepEqual(params, { host: '10.0.0.5', port: '443', protocol: 'udp', status: 'active' });
  assert.deepEqual(parseSearch('dst_ip:2001:db8::1').params, { dst_ip: '2001:db8::1' });
  assert.deepEqual(parseSearch('fe80::1').params, { host: 'fe80::1' });
});

test('invalid searches name the problem', () => {
  assert.match(parseSearch('src_ip:999.1.1.1').errors[0], /src_ip/);
  assert.match(parseSearch('port:70000').errors[0], /port/);
  assert.match(parseSearch('colour:red').errors[0], /Unknown search key "colour"/);
  assert.match(parseSearch('bogus').errors[0], /Cannot understand "bogus"/);
  assert.equal(parseSearch('').errors.length, 0);
});

test('formatSearch round-trips', () => {
  const p = { host: '10.0.0.1', port: '53', protocol: 'udp' };
  assert.deepEqual(parseSearch(formatSearch(p)).params, p);
});
