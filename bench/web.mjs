// bench/web.mjs: the dashboard's numbers (issue 6, done-when 3), measured against the real
// release server and helper with Debian's chromium. Run through bench/web.sh.
//  1. page load to first data on screen (cold browser profile each time), loopback;
//  2. JS+CSS transferred, gzip, charting library included (what a cold load downloads);
//  3. packet-to-screen latency of the live feed: UDP datagrams sent to loopback, captured live
//     by netwatch-capture on `lo` (needs root / CAP_NET_RAW), until the page receives the flow;
//  4. server CPU with 20 open dashboards (live feed streaming), and with none.

import { createSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HELPER, Server, launch, replay, sleep, until } from '../tests/browser/lib/harness.mjs';
import { writeCapture } from '../tests/browser/lib/pcapgen.mjs';

const LOADS = Number(process.env.LOADS || 10);
const PACKETS = Number(process.env.PACKETS || 40);
const DASHBOARDS = Number(process.env.DASHBOARDS || 20);
const CPU_SECONDS = Number(process.env.CPU_SECONDS || 30);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const rows = [];
const row = (metric, value, target) => {
  rows.push([metric, value, target]);
  console.error(`${metric}: ${value}`);
};

// The live helper drops to `nobody` after opening its ring, then connects: let it reach the socket.
const serverDir = mkdtempSync(path.join(tmpdir(), 'nw-bench-srv-'));
chmodSync(serverDir, 0o755);
const server = await Server.start({ dir: serverDir, extraArgs: ['--socket-mode', '666', '--allow-uids', '0,65534', '--allow-gids', '0,65534'] });
const dir = mkdtempSync(path.join(tmpdir(), 'nw-bench-web-'));
const pcap = path.join(dir, 'bench.pcap');
writeCapture(pcap, { startMs: Date.now(), seconds: 600, perSecond: 400, extraFlows: 6000 });
const feeder = replay(server, pcap, { pace: 'realtime', background: true });
await until(async () => (await server.json('/api/v1/top-talkers')).top_talkers.length > 0, 15000, 'traffic');
await sleep(3000);

// 1 + 2: cold loads
const firstData = [];
const domLoaded = [];
let transferred = 0;
let files = 0;
for (let i = 0; i < LOADS; i += 1) {
  const ctx = await launch();
  const page = await ctx.newPage();
  const sizes = [];
  page.on('requestfinished', async (req) => {
    if (!/\.(js|css)$/.test(new URL(req.url()).pathname)) return;
    const s = await req.sizes();
    sizes.push(s.responseBodySize);
  });
  await page.goto(`${server.url}/#/dashboard`);
  await page.waitForFunction(() => document.documentElement.dataset.firstData, null, { timeout: 10000 });
  firstData.push(Number(await page.evaluate(() => document.documentElement.dataset.firstData)));
  domLoaded.push(await page.evaluate(() => performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd));
  await sleep(300);
  if (i === 0) {
    transferred = sizes.reduce((a, b) => a + b, 0);
    files = sizes.length;
  }
  await ctx.close();
}
// the same with the browser already running (what a user opening the page sees), cache off
const warm = [];
{
  const ctx = await launch();
  for (let i = 0; i < LOADS; i += 1) {
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await page.goto(`${server.url}/#/dashboard`);
    await page.waitForFunction(() => document.documentElement.dataset.firstData, null, { timeout: 10000 });
    warm.push(Number(await page.evaluate(() => document.documentElement.dataset.firstData)));
    await page.close();
  }
  await ctx.close();
}
row('Page load to first data on screen (browser running, cache disabled), median / p95', `${pct(warm, 50).toFixed(0)} ms / ${pct(warm, 95).toFixed(0)} ms`, '< 500 ms (seed: < 2 s)');
row('Page load to first data on screen (new browser profile, first start), median / p95', `${pct(firstData, 50).toFixed(0)} ms / ${pct(firstData, 95).toFixed(0)} ms`, '< 500 ms (seed: < 2 s)');
row('DOMContentLoaded (cold), median', `${pct(domLoaded, 50).toFixed(0)} ms`, '-');
row('JS+CSS transferred, gzip, uPlot included', `${(transferred / 1024).toFixed(1)} KiB in ${files} files`, '< 100 KB');

// 3: packet-to-screen latency (live capture on lo)
if (process.getuid && process.getuid() === 0) {
  const live = spawn(HELPER, ['--interface', 'lo', '--connect', server.socket, '--user', 'nobody'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let liveErr = '';
  live.stderr.on('data', (d) => { liveErr += d; });
  await sleep(1500);
  if (live.exitCode !== null) {
    row('Packet-to-screen latency (live feed), p50 / p95', `not measured: live capture failed (${liveErr.trim().split('\n').pop()})`, '< 1 s p95');
  } else {
    const ctx = await launch();
    const page = await ctx.newPage();
    await page.goto(`${server.url}/#/flows?port=39999`);
    await until(async () => (await page.textContent('#conn-status')) === 'LIVE', 10000, 'live');
    // Record when each flow first reaches the page through the live feed, after the frame that shows it.
    await page.evaluate(() => {
      window.seen = {};
      const ft = window.netwatch.flowTable;
      const orig = ft.onLiveFlows.bind(ft);
      ft.onLiveFlows = (data) => {
        orig(data);
        const now = Date.now();
        requestAnimationFrame(() => {
          for (const f of data.flows || []) {
            if (!(f.dstPort in window.seen)) window.seen[f.dstPort] = now;
          }
        });
      };
    });
    // watch every probe port (the filter follows the flow table: protocol udp, the probes' host)
    await page.fill('input[name=search]', 'dst_ip:127.0.0.2 protocol:udp');
    await page.press('input[name=search]', 'Enter');
    await sleep(1000);
    const sock = createSocket('udp4');
    const sent = {};
    for (let i = 0; i < PACKETS; i += 1) {
      const port = 40000 + i;
      sent[port] = Date.now();
      sock.send(Buffer.from('netwatch latency probe'), port, '127.0.0.2');
      await sleep(250);
    }
    await sleep(3000);
    sock.close();
    const seen = await page.evaluate(() => window.seen);
    const lat = Object.entries(sent).filter(([p]) => p in seen).map(([p, t]) => seen[p] - t);
    row('Packet-to-screen latency (live capture on lo to the page), p50 / p95 / max',
      `${pct(lat, 50)} ms / ${pct(lat, 95)} ms / ${Math.max(...lat)} ms (${lat.length}/${PACKETS} probes seen)`, '< 1 s p95');
    await ctx.close();
    live.kill('SIGTERM');
    await sleep(1000);
  }
} else {
  row('Packet-to-screen latency (live feed)', 'not measured: needs root for live capture on lo', '< 1 s p95');
}

// 4: server CPU, idle feed vs 20 dashboards
async function cpuOver(seconds) {
  const c0 = server.cpuSeconds();
  const t0 = Date.now();
  await sleep(seconds * 1000);
  return (100 * (server.cpuSeconds() - c0)) / ((Date.now() - t0) / 1000);
}
const idle = await cpuOver(Math.min(10, CPU_SECONDS));
const ctx = await launch();
for (let i = 0; i < DASHBOARDS; i += 1) {
  const p = await ctx.newPage();
  await p.goto(`${server.url}/#/dashboard`);
}
await sleep(3000);
const clients = await server.text('/metrics').then((t) => /^netwatch_websocket_clients (\d+)/m.exec(t)?.[1]);
const busy = await cpuOver(CPU_SECONDS);
row(`Server CPU, feed streaming, no dashboard open`, `${idle.toFixed(2)} % of one core`, '-');
row(`Server CPU with ${DASHBOARDS} open dashboards (${clients} WebSocket clients)`, `${busy.toFixed(2)} % of one core`, '< 5 % (PERF-02)');
row('Server RSS at the end', `${(server.rss() / 1048576).toFixed(1)} MiB`, '-');
await ctx.close();
feeder.proc.kill();
await server.stop();

console.log('| Metric | Result | Target |');
console.log('|---|---|---|');
for (const [m, v, t] of rows) console.log(`| ${m} | ${v} | ${t} |`);
