// Shared set-up for the end-to-end tests: the repository served on a free loopback port and
// headless Debian Chromium with WebGPU (SwiftShader when there is no GPU).
import { inflateRawSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from '../../scripts/serve.mjs';

export const OUTPUT = join(process.cwd(), 'test-results', 'e2e');

/**
 * `webgpu: false` launches Chromium without `--enable-unsafe-webgpu`: navigator.gpu exists but
 * refuses to give an adapter (as on many Linux desktops). `args`: more Chromium flags (a fake
 * microphone). `csp: false` serves without the Content-Security-Policy header, `prepend` puts
 * code before the files of the paths it names (the privacy test's positive control).
 */
export async function start({ webgpu = true, args = [], csp = true, prepend = {} } = {}) {
  const server = await serve({ port: 0, quiet: true, csp, prepend });
  const origin = `http://127.0.0.1:${server.address().port}`;
  await mkdir(OUTPUT, { recursive: true });
  // Playwright gives each launch a fresh temporary profile (the --user-data-dir the flags in
  // TOOLCHAIN.md ask for), so none is passed here.
  const browser = await chromium
    .launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: [
        '--no-sandbox',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        webgpu ? '--enable-unsafe-webgpu' : '--disable-blink-features=WebGPU',
        ...args,
      ],
    })
    .catch((err) => {
      server.close();
      throw err;
    });
  return {
    origin,
    browser,
    async stop() {
      await browser.close();
      server.close();
    },
  };
}

/**
 * Open a page that records every request leaving `origin` and every console line.
 * `noNavigatorGpu` removes navigator.gpu from the page and from its worker before they run,
 * as in a browser without WebGPU (no Chromium flag removes it). `init` runs in the page before
 * its scripts; `fresh` opens it in a browser context of its own (its own storage). The path
 * `/blank` is an empty page on the origin, for tests of the API alone.
 */
export async function open(ctx, path, { noNavigatorGpu = false, init, fresh = false } = {}) {
  const page = await (fresh ? await ctx.browser.newContext() : ctx.browser).newPage();
  if (init) await page.addInitScript(init);
  if (path === '/blank') {
    await page.route(`${ctx.origin}/blank`, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>blank</title>' }));
  }
  if (noNavigatorGpu) {
    const remove = 'delete Object.getPrototypeOf(navigator).gpu;\n';
    await page.addInitScript(remove);
    await page.route('**/www/worker.js', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: remove + (await response.text()) });
    });
  }
  const foreign = [];
  const consoleLines = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== ctx.origin) foreign.push(req.url());
  });
  page.on('console', (msg) => consoleLines.push(msg.text()));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
  await page.goto(ctx.origin + path);
  return { page, foreign, consoleLines };
}

/** What a Content-Security-Policy violation leaves in the console: Chromium's own line for the
 * page, or the line a test's probe writes from a worker's `securitypolicyviolation` event. */
const VIOLATION = /violates the following Content Security Policy directive|^csp-violation /;

/**
 * The privacy check: nothing left the page's origin (the requests `open` recorded, from the page
 * and its workers) and nothing tried to (no CSP violation in the console). Throws naming both.
 */
export function assertPrivate({ foreign, consoleLines }) {
  const violations = consoleLines.filter((line) => VIOLATION.test(line));
  if (foreign.length || violations.length) {
    throw new assert.AssertionError({
      message: `requests left the page origin: ${JSON.stringify(foreign)}; ` +
        `requests the Content-Security-Policy blocked: ${JSON.stringify(violations)}`,
    });
  }
}

/** The first `perClass` demo digits of classes 0 and 1, as image dataset items by URL. */
export function digits(perClass) {
  return ['0', '1'].flatMap((d) => readdirSync(join(process.cwd(), 'assets', 'datasets', 'mnist', d)).sort().slice(0, perClass)
    .map((f) => ({ label: d, name: `${d}-${f}`, source: `/assets/datasets/mnist/${d}/${f}` })));
}

/** The file `name` of a zip archive (stored or deflated). */
export function unzip(zip, name) {
  for (let at = 0; at + 30 < zip.length; ) {
    if (zip.readUInt32LE(at) !== 0x04034b50) break;
    const method = zip.readUInt16LE(at + 8);
    const size = zip.readUInt32LE(at + 18);
    const nameLen = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    const file = zip.toString('utf8', at + 30, at + 30 + nameLen);
    const data = zip.subarray(at + 30 + nameLen + extra, at + 30 + nameLen + extra + size);
    if (file === name) return method === 8 ? inflateRawSync(data) : data;
    at += 30 + nameLen + extra + size;
  }
  throw new Error(`${name} is not in the zip`);
}
