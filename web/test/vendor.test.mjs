// The committed charting library must equal the npm package pinned in package.json.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const web = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('assets/vendor holds the pinned uplot release, byte for byte', (t) => {
  const pinned = JSON.parse(readFileSync(path.join(web, 'package.json'), 'utf8')).dependencies.uplot;
  const pkgDir = path.join(web, 'node_modules', 'uplot');
  if (!existsSync(pkgDir)) {
    t.skip('node_modules missing: run `npm ci` in web/');
    return;
  }
  const installed = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  assert.equal(installed, pinned, 'npm ci installed the pinned version');
  const lock = JSON.parse(readFileSync(path.join(web, 'package-lock.json'), 'utf8'));
  assert.equal(lock.packages['node_modules/uplot'].version, pinned, 'lockfile pins the same version');
  for (const [src, dst] of [['dist/uPlot.iife.min.js', 'uPlot.iife.min.js'], ['dist/uPlot.min.css', 'uPlot.min.css'], ['LICENSE', 'uPlot.LICENSE.txt']]) {
    assert.equal(sha(path.join(web, 'assets', 'vendor', dst)), sha(path.join(pkgDir, src)), `${dst} equals uplot/${src}`);
  }
});

test('index.html preloads every module (no import waterfall), and nothing else is loaded inline', async () => {
  const { readdirSync, statSync } = await import('node:fs');
  const assets = path.join(web, 'assets');
  const walk = (d) => readdirSync(d).flatMap((f) => (statSync(path.join(d, f)).isDirectory() ? walk(path.join(d, f)) : [path.join(d, f)]));
  const modules = walk(path.join(assets, 'js')).filter((f) => f.endsWith('.js')).map((f) => path.relative(assets, f)).sort();
  const html = readFileSync(path.join(assets, 'index.html'), 'utf8');
  const preloaded = [...html.matchAll(/rel="modulepreload" href="([^"]+)"/g)].map((m) => m[1]).sort();
  assert.deepEqual(preloaded, modules);
  assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), 'no inline script (CSP script-src self)');
  assert.ok(!/\sstyle="/.test(html), 'no inline style attribute (CSP style-src self)');
});
