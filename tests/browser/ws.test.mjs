// The WebSocket feed under a deliberately slow client (never reads) and 50 normal clients,
// against the real server fed by the real helper (a realtime replay with many new flows per
// second, so every client gets a steady stream). The slow client must be dropped and counted;
// the others keep receiving every second; the server's memory stays bounded.

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Server, missingPrerequisites, replay, sleep, until } from './lib/harness.mjs';
import { writeCapture } from './lib/pcapgen.mjs';
import { spawn } from 'node:child_process';
import { wsConnect } from './lib/wsraw.mjs';

// The slow client: a Python process with a 2 KiB receive buffer that upgrades, subscribes to
// every topic and then never reads (Node cannot shrink a socket's receive buffer).
const SLOW_CLIENT = `
import base64, os, socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/v1/ws HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
           f"Sec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\nOrigin: http://127.0.0.1:{port}\\r\\n\\r\\n").encode())
head = b""
while b"\\r\\n\\r\\n" not in head:
    head += s.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head
msg = b'{"type":"subscribe","topics":["metrics","top_talkers","protocols","health","alerts","flows"]}'
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
print("subscribed", flush=True)
time.sleep(600)
`;

const skip = missingPrerequisites() || false;
const ALL = ['metrics', 'top_talkers', 'protocols', 'health', 'alerts', 'flows'];
let server;
let feeder;

async function promCounter(name) {
  const text = await server.text('/metrics');
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

before(async () => {
  if (skip) return;
  server = await Server.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'nw-ws-'));
  const pcap = path.join(dir, 'feed.pcap');
  writeCapture(pcap, { startMs: Date.now(), seconds: 180, perSecond: 300, extraFlows: 54000 });
  feeder = replay(server, pcap, { pace: 'realtime', background: true });
  await until(async () => (await server.json('/api/v1/flows?limit=1')).pagination.total_count > 100, 15000, 'flows arriving');
});

after(async () => {
  if (feeder) feeder.proc.kill();
  if (server) await server.stop();
});

test('protocol: hello, subscribe acknowledgement, errors for bad messages, pong', { skip }, async () => {
  const got = [];
  const c = await wsConnect(server.port, { onMessage: (m) => got.push(m) });
  c.send({ type: 'subscribe', topics: ['metrics'], filter: { protocol: 'udp' } });
  c.send({ type: 'subscribe', topics: ['cats'] });
  c.send({ type: 'subscribe', topics: ['flows'], filter: { port: '70000' } });
  c.send({ type: 'ping' });
  await until(() => got.some((m) => m.type === 'metrics'), 5000, 'a metrics message');
  const types = got.map((m) => m.type);
  assert.equal(types[0], 'hello');
  assert.equal(got[0].data.queue_limit, 64);
  assert.ok(types.includes('subscribed'));
  assert.ok(types.includes('pong'));
  const errors = got.filter((m) => m.type === 'error').map((m) => m.data.code);
  assert.deepEqual(errors, ['UNKNOWN_TOPIC', 'INVALID_FILTER']);
  for (const m of got) {
    assert.ok(typeof m.timestamp === 'string' && !Number.isNaN(Date.parse(m.timestamp)), 'every message has a timestamp');
    assert.ok('data' in m);
  }
  const metrics = got.find((m) => m.type === 'metrics').data;
  for (const k of ['timestamp', 'bytesPerSecond', 'packetsPerSecond', 'activeFlows', 'cpuUsage', 'memoryUsage', 'droppedPackets', 'interfaceStatus', 'recent']) {
    assert.ok(k in metrics, k);
  }
  c.close();
});

test('the /ws alias and a foreign Origin', { skip }, async () => {
  const c = await wsConnect(server.port, { path: '/ws' });
  await until(() => c.messages > 0, 5000, 'hello on /ws');
  c.close();
  await assert.rejects(wsConnect(server.port, { origin: 'http://evil.example' }), /upgrade refused/);
});

test('a slow client is dropped and counted; 50 normal clients stay on time; memory stays bounded', { skip }, async () => {
  const droppedBefore = await promCounter('netwatch_websocket_dropped_clients_total');
  const rssBefore = server.rss();
  const normal = [];
  for (let i = 0; i < 50; i += 1) {
    const state = { metrics: [], lastAt: 0 };
    const c = await wsConnect(server.port, {
      onMessage: (m) => {
        if (m.type === 'metrics') {
          state.metrics.push(Date.now());
          state.lastAt = Date.now();
        }
      },
    });
    c.send({ type: 'subscribe', topics: ALL });
    normal.push({ c, state });
  }
  const slow = spawn('python3', ['-c', SLOW_CLIENT, String(server.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => slow.stdout.once('data', resolve));
  const t0 = Date.now();
  await until(async () => (await promCounter('netwatch_websocket_dropped_clients_total')) > droppedBefore, 80000, 'the slow client to be dropped');
  const dropSeconds = (Date.now() - t0) / 1000;
  // keep streaming a little after the drop: the others must be unaffected
  await sleep(3000);
  const now = Date.now();
  const rssAfter = server.rss();
  const gaps = [];
  for (const { state } of normal) {
    assert.ok(state.metrics.length >= 3, 'each normal client got metrics every second');
    assert.ok(now - state.lastAt < 3000, 'each normal client is still current');
    for (let i = 1; i < state.metrics.length; i += 1) gaps.push(state.metrics[i] - state.metrics[i - 1]);
  }
  gaps.sort((a, b) => a - b);
  const p99 = gaps[Math.floor(gaps.length * 0.99)];
  const dropped = (await promCounter('netwatch_websocket_dropped_clients_total')) - droppedBefore;
  assert.equal(dropped, 1, 'exactly the slow client was dropped');
  assert.equal(await promCounter('netwatch_websocket_clients'), 50);
  const growthMiB = (rssAfter - rssBefore) / 1048576;
  console.log(`slow client dropped after ${dropSeconds.toFixed(1)} s; metrics gap p99 of 50 clients ${p99} ms; ` +
    `server RSS ${(rssBefore / 1048576).toFixed(1)} -> ${(rssAfter / 1048576).toFixed(1)} MiB`);
  assert.ok(growthMiB < 64, `server memory bounded (grew ${growthMiB.toFixed(1)} MiB)`);
  for (const { c } of normal) c.close();
  slow.kill();
  await until(async () => (await promCounter('netwatch_websocket_clients')) === 0, 10000, 'clients to leave');
});
