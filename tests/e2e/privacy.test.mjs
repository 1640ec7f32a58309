// Privacy, proved. The check every test runs (browser.mjs's assertPrivate: no request left the
// page's origin, none was blocked trying) is first shown to catch a leak: the harness injects
// a request to another origin from the page, from the training worker and from the decoder
// worker. Served without the Content-Security-Policy header and with the page's meta tag
// removed, all three go out and the check fails naming each; served as `make demo` serves the
// app, the policy blocks all three (each one's securitypolicyviolation is seen) and the check
// still fails on the attempts. Then a real run, from the images to the exported zip, leaves the
// check silent, and its export holds nothing from the dataset unless asked.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { start, assertPrivate } from './browser.mjs';

// TEST-NET-2 (RFC 5737): never routed, so nothing is sent anywhere even when the policy is off.
const LEAK = 'http://198.51.100.23:9/tabtune-leak';
const WHERE = ['page', 'training-worker', 'decoder-worker'];
const RECIPE = { head: { epochs: 1, batch_size: 4 }, finetune: null, val_fraction: 0.34, seed: 1 };

// Six digits, two per class, by URL on the page's origin, and a file that is no image (the
// run leaves it out, naming it).
const UNREADABLE = 'not-an-image-7f3a.png';
const ITEMS = ['0', '1', '2'].flatMap((digit) =>
  readdirSync(join(process.cwd(), 'assets', 'datasets', 'mnist', digit)).sort().slice(0, 2).map((file) => ({
    label: digit,
    name: `digit-${digit}-${file}`,
    source: `/assets/datasets/mnist/${digit}/${file}`,
  }))).concat([{ label: '0', name: UNREADABLE, source: '/Cargo.toml' }]);

/** A request to another origin from `where`, and a console line for any violation it causes. */
const probe = (where) =>
  `self.addEventListener('securitypolicyviolation', (e) => console.log('csp-violation ' + e.blockedURI));\n` +
  `fetch('${LEAK}/${where}').catch(() => {});\n`;

// The workers' scripts with their probes, as the server sends them (a route in the page does
// not reach decoder.js: the training worker fetches it).
const PREPEND = { '/www/worker.js': probe('training-worker'), '/www/decoder.js': probe('decoder-worker') };

/** Open the app's page; with `inject`, the page sends its probe (the workers send theirs when
 * `ctx` was started with PREPEND); with `stripMeta`, the page arrives without its meta policy.
 * Then train and export through the API (the decoder worker starts when the core asks for the
 * first image). */
async function run(ctx, { inject = false, stripMeta = false } = {}) {
  const page = await ctx.browser.newPage();
  if (inject) await page.addInitScript(probe('page'));
  if (stripMeta) {
    await page.route(/\/(index\.html)?$/, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/s, '');
      await route.fulfill({ response, body });
    });
  }
  const seen = { foreign: [], consoleLines: [] };
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== ctx.origin) seen.foreign.push(req.url());
  });
  page.on('console', (msg) => seen.consoleLines.push(msg.text()));
  await page.goto(`${ctx.origin}/`);
  const out = await page.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    const report = await tuner.train(recipe);
    const text = (files) => new TextDecoder().decode(files['report.json']);
    const plain = text((await tuner.export()).files);
    const asked = text((await tuner.export({ examples: true })).files);
    tuner.terminate();
    return { skipped: report.skipped.map(([name]) => name), plain, asked };
  }, { items: ITEMS, recipe: RECIPE });
  // Requests still on their way when the run ended.
  await page.waitForTimeout(500);
  await page.close();
  return { ...seen, ...out };
}

const leaked = (seen, where) => seen.foreign.includes(`${LEAK}/${where}`);
const blocked = (seen, where) => seen.consoleLines.includes(`csp-violation ${LEAK}/${where}`);

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('positive control, no policy: a request from the page and from each worker is seen and fails the check', { timeout: 600_000 }, async () => {
  const open = await start({ csp: false, prepend: PREPEND });
  try {
    const seen = await run(open, { inject: true, stripMeta: true });
    console.log(`without the policy, left the origin: ${JSON.stringify(seen.foreign)}`);
    for (const where of WHERE) assert.ok(leaked(seen, where), `the ${where}'s request was not seen: ${JSON.stringify(seen.foreign)}`);
    assert.throws(() => assertPrivate(seen), (err) => WHERE.every((where) => err.message.includes(`${LEAK}/${where}`)));
  } finally {
    await open.stop();
  }
});

test('positive control, as served: the policy blocks each injected request, and the check fails on the attempts', { timeout: 600_000 }, async () => {
  const served = await start({ prepend: PREPEND });
  try {
    const seen = await run(served, { inject: true });
    for (const where of WHERE) {
      assert.ok(!leaked(seen, where), `the ${where}'s request left the origin despite the policy`);
      assert.ok(blocked(seen, where), `no policy violation for the ${where}: ${seen.consoleLines.join(' | ')}`);
    }
    assert.throws(() => assertPrivate(seen), (err) => WHERE.every((where) => err.message.includes(`${LEAK}/${where}`)));
  } finally {
    await served.stop();
  }
});

test('a real run leaves nothing to see, and its export holds nothing from the dataset unless asked', { timeout: 600_000 }, async () => {
  const seen = await run(ctx);
  assertPrivate(seen);
  // The run named the file it left out; the export does not, nor any image it trained on.
  assert.deepEqual(seen.skipped, [UNREADABLE]);
  for (const { name } of ITEMS) assert.ok(!seen.plain.includes(name), `the export's report.json names ${name}`);
  assert.match(seen.plain, /"examples_left_out": true/);
  // Asked for, the examples come along.
  assert.ok(seen.asked.includes(UNREADABLE), seen.asked);
  assert.doesNotMatch(seen.asked, /examples_left_out/);
});
