// harness.mjs: starts the real netwatch-server (release build) on a free loopback port with
// its own Unix socket, feeds it with the real netwatch-capture helper replaying a capture,
// and drives Debian's chromium with playwright-core. No mocks: every number on the page
// comes from the server, which got it from the helper.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.NETWATCH_BIN_DIR || path.join(ROOT, 'target', 'release');
export const SERVER = path.join(BIN, 'netwatch-server');
export const HELPER = path.join(BIN, 'netwatch-capture');
export const FIXTURES = path.join(ROOT, 'tests', 'fixtures');
export const ARTIFACTS = process.env.NETWATCH_ARTIFACTS || path.join(ROOT, 'tests', 'browser', 'artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function missingPrerequisites() {
  const missing = [SERVER, HELPER, CHROMIUM].filter((p) => !existsSync(p));
  return missing.length ? `missing ${missing.join(', ')} (cargo build --release; apt-get install chromium)` : null;
}

/** A running server. */
export class Server {
  constructor({ port, dir, extraArgs = [] }) {
    this.port = port;
    this.dir = dir;
    this.socket = path.join(dir, 'capture.sock');
    this.extraArgs = extraArgs;
    this.proc = null;
    this.log = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(opts = {}) {
    const dir = opts.dir || mkdtempSync(path.join(tmpdir(), 'nw-browser-'));
    const s = new Server({ port: opts.port || (await freePort()), dir, extraArgs: opts.extraArgs });
    await s.spawn();
    return s;
  }

  async spawn() {
    this.proc = spawn(SERVER, [
      '--listen', `127.0.0.1:${this.port}`,
      '--socket', this.socket,
      '--rate-limit-loopback', '0',
      '--log', 'warn',
      ...this.extraArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`server exited: ${this.log}`);
      try {
        const r = await fetch(`${this.url}/api/v1/health`);
        if (r.status === 200 || r.status === 503) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    throw new Error(`server did not start: ${this.log}`);
  }

  get pid() {
    return this.proc.pid;
  }

  /** Resident memory of the server process (bytes). */
  rss() {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.proc.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  }

  /** CPU time (user + system) in seconds. */
  cpuSeconds() {
    const f = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  async stop(signal = 'SIGTERM') {
    if (!this.proc || this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    await Promise.race([done, sleep(5000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  async json(p) {
    const r = await fetch(`${this.url}${p}`);
    return r.json();
  }

  async text(p) {
    const r = await fetch(`${this.url}${p}`);
    return r.text();
  }
}

/** Runs the helper: replays `pcap` into the server's socket; resolves when it exits (fast) or at once (background). */
export function replay(server, pcap, { pace = 'fast', background = false } = {}) {
  const p = spawn(HELPER, ['--read', pcap, '--connect', server.socket, '--pace', pace], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { log += d; });
  const done = new Promise((resolve, reject) => {
    // Killed by a signal (the test stopping a background replay) is not a failure.
    p.on('exit', (code, signal) => (code === 0 || signal ? resolve(log) : reject(new Error(`helper exited ${code}: ${log}`))));
  });
  if (background) return { proc: p, done };
  return done;
}

/** Waits until `fn` returns a truthy value (polling), or throws after `ms`. */
export async function until(fn, ms = 10000, what = 'condition') {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

/** Launches chromium with a fresh profile. */
export async function launch() {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'nw-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage', '--headless=new'],
    viewport: { width: 1280, height: 720 },
    acceptDownloads: true,
  });
  return context;
}

/**
 * Opens a page that records every console error and page error. `allowed` lists regular
 * expressions for errors the browser itself logs while the server is deliberately down
 * (failed network requests), which no page code can suppress.
 */
export async function openPage(context, url, { width = 1280, height = 720 } = {}) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height });
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.netwatchErrors = errors;
  if (url) await page.goto(url);
  return page;
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}
