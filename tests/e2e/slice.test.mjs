// The first vertical slice, as a person sees it: open the page, see the WebGPU adapter, train
// the head, watch the loss fall. Then the same without WebGPU, on the CPU fallback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, open, OUTPUT } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

async function trainFromPage(page, shot) {
  await page.click('#train');
  await page.waitForSelector('#result[data-accuracy]', { timeout: 240_000 });
  await page.screenshot({ path: join(OUTPUT, shot), fullPage: true });
  const data = await page.$eval('#result', (el) => ({ ...el.dataset, text: el.textContent }));
  return {
    first: Number(data.firstLoss),
    last: Number(data.lastLoss),
    accuracy: Number(data.accuracy),
    text: data.text,
  };
}

test('the page trains the head on WebGPU and shows the loss falling', { timeout: 300_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/');
  const device = page.locator('#device');
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, {
    timeout: 60_000,
  });
  const state = await device.getAttribute('data-state');
  const text = await device.textContent();
  console.log(`page device: ${text}`);
  assert.equal(state, 'webgpu', `expected WebGPU, page says: ${text}; console: ${consoleLines.join(' | ')}`);
  assert.equal(await page.locator('#fallback').isHidden(), true);

  const run = await trainFromPage(page, 'slice-webgpu.png');
  console.log(`page result (webgpu): ${run.text}`);
  assert.ok(run.last < run.first * 0.6, `loss did not fall: ${run.first} -> ${run.last}`);
  assert.ok(run.accuracy > 0.9, `validation accuracy ${run.accuracy}`);
  const plotted = await page.$eval('#loss-plot', (c) => c.toDataURL().length);
  assert.ok(plotted > 2000, 'the loss plot is empty');
  assert.deepEqual(foreign, [], 'requests left the page origin');
});

test('without navigator.gpu the page falls back to the CPU and says why', { timeout: 300_000 }, async () => {
  const { page, foreign } = await open(ctx, '/', { noNavigatorGpu: true });
  assert.equal(await page.evaluate(() => 'gpu' in navigator), false);
  await cpuFallback(page, /navigator\.gpu is missing/, 'slice-no-webgpu.png');
  assert.deepEqual(foreign, []);
});

test('when the browser refuses a WebGPU adapter the page falls back to the CPU', { timeout: 300_000 }, async () => {
  const refusing = await start({ webgpu: false });
  try {
    const { page } = await open(refusing, '/');
    await cpuFallback(page, /returned no adapter/, 'slice-adapter-refused.png');
  } finally {
    await refusing.stop();
  }
});

async function cpuFallback(page, reason, shot) {
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, {
    timeout: 60_000,
  });
  assert.equal(await page.locator('#device').getAttribute('data-state'), 'cpu');
  const notice = await page.locator('#fallback').textContent();
  console.log(`page notice: ${notice}`);
  assert.match(notice, reason);
  const run = await trainFromPage(page, shot);
  console.log(`page result (cpu fallback): ${run.text}`);
  assert.ok(run.last < run.first * 0.6, `loss did not fall: ${run.first} -> ${run.last}`);
  assert.ok(run.accuracy > 0.9, `validation accuracy ${run.accuracy}`);
  return run;
}
