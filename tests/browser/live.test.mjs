// The live dashboard against the real server fed by the real helper replaying a generated
// capture in real time: an empty store explains itself, the live chart gets a new point every
// second, killing and restarting the server makes the page reconnect by itself, and every view
// is photographed (tests/browser/artifacts/; docs/screenshots/ with NETWATCH_UPDATE_SCREENSHOTS=1).

import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, Server, launch, missingPrerequisites, openPage, replay, screenshot, sleep, until } from './lib/harness.mjs';
import { writeCapture } from './lib/pcapgen.mjs';

const skip = missingPrerequisites() || false;
let server;
let context;
let page;
let feeder;
let pcap;

async function shoot(name) {
  const file = await screenshot(page, name);
  if (process.env.NETWATCH_UPDATE_SCREENSHOTS === '1') {
    const dir = path.join(ROOT, 'docs', 'screenshots');
    mkdirSync(dir, { recursive: true });
    copyFileSync(file, path.join(dir, `${name}.png`));
  }
}

before(async () => {
  if (skip) return;
  server = await Server.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'nw-live-'));
  pcap = path.join(dir, 'live.pcap');
  context = await launch();
  page = await openPage(context, `${server.url}/#/dashboard`);
});

after(async () => {
  if (feeder) feeder.proc.kill();
  if (context) await context.close();
  if (server) await server.stop();
});

test('an empty store says why instead of showing a blank page', { skip }, async () => {
  await until(async () => (await page.textContent('#conn-status')) === 'LIVE', 10000, 'live feed');
  await until(async () => (await page.textContent('#health-status')) === 'UNHEALTHY', 10000, 'health pill');
  await page.waitForSelector('text=capture is not active');
  assert.equal(await page.getAttribute('[data-stat=capture]', 'class'), 'stat stat-error');
  await shoot('empty-store');
});

test('the live chart gets a new point every second', { skip }, async () => {
  writeCapture(pcap, { startMs: Date.now(), seconds: 120, perSecond: 300, extraFlows: 600 });
  feeder = replay(server, pcap, { pace: 'realtime', background: true });
  await page.waitForSelector('#talkers tr[data-host]', { timeout: 15000 });
  await until(async () => (await page.textContent('#health-status')) === 'HEALTHY', 10000, 'healthy');
  const seen = [];
  const start = Date.now();
  while (Date.now() - start < 6000) {
    seen.push(Number(await page.getAttribute('#bandwidth', 'data-last')));
    await sleep(200);
  }
  const distinct = [...new Set(seen)];
  assert.ok(distinct.every((v, i) => i === 0 || v > distinct[i - 1]), 'points only move forward');
  assert.ok(distinct.length >= 5, `a new point each second (saw ${distinct.length} in 6 s)`);
  // the newest point's bandwidth equals the server's history for that second
  const last = distinct.at(-1);
  const hist = await server.json('/api/v1/metrics/history?duration=5m&interval=1s');
  const point = hist.metrics.find((m) => Date.parse(m.timestamp) / 1000 === last);
  assert.ok(point, 'the chart point is a server history point');
});

test('screenshots of every view, wide and narrow', { skip }, async () => {
  await sleep(4000); // let the chart fill a little
  for (const [w, h, suffix] of [[1280, 720, ''], [390, 844, '-narrow']]) {
    await page.setViewportSize({ width: w, height: h });
    for (const view of ['dashboard', 'flows', 'health']) {
      await page.goto(`${server.url}/#/${view}`);
      await page.waitForSelector(`#view-${view}:not([hidden])`);
      if (view === 'flows') await page.waitForSelector('tr.flow-row');
      if (view === 'dashboard') await page.waitForSelector('#talkers tr[data-host]');
      if (view === 'health') await page.waitForSelector('#metrics-grid [data-stat=helpers]');
      await sleep(1200);
      await shoot(`${view}${suffix}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto(`${server.url}/#/dashboard`);
  await page.waitForSelector('#talkers tr[data-host]');
  assert.deepEqual(page.netwatchErrors, [], 'no console errors while the server is up');
});

test('killing and restarting the server: the page shows it is offline, then reconnects by itself', { skip }, async () => {
  await until(async () => (await page.textContent('#conn-status')) === 'LIVE', 10000, 'live before');
  await server.stop('SIGKILL');
  await page.waitForSelector('#offline-banner:not([hidden])', { timeout: 20000 });
  assert.equal(await page.textContent('#conn-status'), 'OFFLINE');
  assert.match(await page.textContent('#offline-banner'), /Connection to the Netwatch server lost/);
  await shoot('offline');
  const updatesBefore = Number(await page.getAttribute('#bandwidth', 'data-updates'));
  await sleep(1500);
  await server.spawn(); // same port, same socket: the helper reconnects by itself too
  await until(async () => (await page.textContent('#conn-status')) === 'LIVE', 30000, 'reconnected');
  assert.ok(await page.isHidden('#offline-banner'));
  await until(async () => Number(await page.getAttribute('#bandwidth', 'data-updates')) > updatesBefore + 2, 15000, 'chart updating again');
  await page.waitForSelector('#talkers tr[data-host]', { timeout: 20000 });
  // Only the browser's own network errors from the outage (refused connections, failed
  // WebSocket handshakes, a 503 health while no helper was back yet) may appear.
  const unexpected = page.netwatchErrors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|status of 503/.test(e));
  assert.deepEqual(unexpected, []);
});
