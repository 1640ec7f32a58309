// Shared set-up for the end-to-end tests: the repository served on a free loopback port and
// headless Debian Chromium with WebGPU (SwiftShader when there is no GPU).
import { chromium } from 'playwright-core';
import { mkdtemp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../../scripts/serve.mjs';

export const OUTPUT = join(process.cwd(), 'test-results', 'e2e');

/** `webgpu: false` launches Chromium with WebGPU switched off (navigator.gpu absent, workers too). */
export async function start({ webgpu = true } = {}) {
  const server = await serve({ port: 0, quiet: true });
  const origin = `http://127.0.0.1:${server.address().port}`;
  await mkdir(OUTPUT, { recursive: true });
  const browser = await chromium.launch({
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
      `--user-data-dir=${await mkdtemp(join(tmpdir(), 'tabtune-chromium-'))}`,
    ],
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

/** Open a page that records every request leaving `origin` and every console line. */
export async function open(ctx, path) {
  const page = await ctx.browser.newPage();
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
