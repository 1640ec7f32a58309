// One session core for every front end: the same recipe on the same data through the CLI
// (native, CPU) and through the browser API (wasm, CPU backend, in Chromium) gives the same
// report.json and the same exported weights, for images (PNG, which both decoders read
// exactly) and for text. The class folders are named "2", "9", "10": both order them so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, open } from './browser.mjs';

const ROOT = process.cwd();
const DATA = join(ROOT, 'test-results', 'session');
const URL_BASE = '/test-results/session';
const CLI = join(ROOT, 'target', 'release', 'tabtune');
// Text: the default AdamW. Images: SGD with momentum. With AdamW a parameter whose gradient is
// ~0 moves by about ±lr whichever way its rounding noise points, so the two CPU kernels (x86
// AVX natively, wasm SIMD in the tab) then differ by up to steps x lr there (3.4e-4 measured
// for 3 steps at 1e-4) although every loss agrees to 1e-5; SGD's step is proportional to the
// gradient, so the weights themselves can be compared to 1e-5.
const TEXT_RECIPE = {
  head: { epochs: 2, batch_size: 4 },
  finetune: { epochs: 1, batch_size: 4, unfreeze: { last: 1 } },
  val_fraction: 0.34,
  seed: 3,
  text: { max_length: 32 },
};
const IMAGE_RECIPE = {
  head: { epochs: 2, batch_size: 4, optimizer: 'sgd', lr: 0.01 },
  finetune: { epochs: 1, batch_size: 4, unfreeze: { last: 1 }, optimizer: 'sgd', lr: 0.01, backbone_lr: 0.001 },
  val_fraction: 0.34,
  seed: 3,
};

let ctx;
before(async () => {
  // The CLI the native tests built (a no-op when it is up to date).
  execFileSync('cargo', ['build', '--release', '--bin', 'tabtune'], { stdio: 'inherit' });
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  writeFileSync(join(DATA, 'blank.html'), '<!doctype html><title>blank</title>');
  ctx = await start();
});
after(async () => ctx?.stop());

/** Run the CLI in DATA (so file names are relative, as the page names them). */
function cli(args) {
  return execFileSync(CLI, args, { cwd: DATA, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Train in the page with the browser API on the CPU backend; compare the weights with the
 * CLI's export (fetched from the server) there; return the report.json and config.json texts. */
async function inBrowser(model, dataset, recipe, cliOut) {
  const { page, consoleLines } = await open(ctx, `${URL_BASE}/blank.html`);
  return page.evaluate(async ({ model, dataset, recipe, cliOut }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model, device: 'cpu' });
    await tuner.setDataset(dataset);
    await tuner.train(recipe);
    const { files } = await tuner.export();
    tuner.terminate();
    const theirs = new Uint8Array(await (await fetch(`${cliOut}/model.safetensors`)).arrayBuffer());
    const ours = files['model.safetensors'];
    const headerEnd = (b) => 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
    const dec = new TextDecoder();
    const sameLayout = dec.decode(ours.subarray(0, headerEnd(ours))) === dec.decode(theirs.subarray(0, headerEnd(theirs)));
    let maxDiff = 0;
    let values = 0;
    if (sameLayout) {
      const a = new DataView(ours.buffer, ours.byteOffset + headerEnd(ours));
      const b = new DataView(theirs.buffer, theirs.byteOffset + headerEnd(theirs));
      for (let i = 0; i + 4 <= a.byteLength; i += 4) {
        if (a.getUint32(i, true) === b.getUint32(i, true)) continue;
        const d = Math.abs(a.getFloat32(i, true) - b.getFloat32(i, true));
        maxDiff = Number.isFinite(d) ? Math.max(maxDiff, d) : Infinity;
        values += 1;
      }
    }
    return {
      sameLayout,
      maxDiff,
      values,
      names: Object.keys(files).sort(),
      report: dec.decode(files['report.json']),
      config: dec.decode(files['config.json']),
    };
  }, { model, dataset, recipe, cliOut }).catch((err) => {
    throw new Error(`${err.message}; console: ${consoleLines.join(' | ')}`);
  });
}

/** `a` and `b` have the same keys everywhere; numbers agree to `tol` except the timings. */
function sameReport(a, b, path = '') {
  const timing = /(^|\.)(seconds|throughput)$|^report\.features\.1$/;
  if (typeof a === 'number' && typeof b === 'number') {
    if (!timing.test(path)) assert.ok(Math.abs(a - b) <= 1e-5, `${path}: ${a} vs ${b}`);
    return;
  }
  if (a === null || typeof a !== 'object') return assert.deepEqual(a, b, path);
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort(), `${path}: keys`);
  for (const key of Object.keys(a)) sameReport(a[key], b[key], path ? `${path}.${key}` : key);
}

function compare(name, browser, cliOut) {
  const cliReport = JSON.parse(readFileSync(join(DATA, cliOut, 'report.json'), 'utf8'));
  const ours = JSON.parse(browser.report);
  console.log(`${name}: CLI vs browser weights: same layout ${browser.sameLayout}, ${browser.values} values differ, ` +
    `by at most ${browser.maxDiff.toExponential(2)}; losses ${JSON.stringify(ours.report.phases.map((p) => p.losses.length))}`);
  assert.deepEqual(browser.names, readdirSync(join(DATA, cliOut)).filter((f) => !f.startsWith('.')).sort());
  sameReport(ours, cliReport);
  assert.ok(browser.sameLayout, 'the two exports name and shape the tensors alike');
  assert.ok(browser.maxDiff <= 1e-5, `weights differ by ${browser.maxDiff}`);
  const config = JSON.parse(browser.config);
  const cliConfig = JSON.parse(readFileSync(join(DATA, cliOut, 'config.json'), 'utf8'));
  assert.deepEqual(config.id2label, cliConfig.id2label);
  return ours.report;
}

test('images: the CLI and the browser API give the same report.json and weights', { timeout: 900_000 }, async () => {
  const digits = join(ROOT, 'assets', 'datasets', 'mnist');
  const items = [];
  for (const [digit, label] of [['0', '2'], ['1', '9'], ['2', '10']]) {
    mkdirSync(join(DATA, 'images', label), { recursive: true });
    for (const file of readdirSync(join(digits, digit)).sort().slice(0, 4)) {
      cpSync(join(digits, digit, file), join(DATA, 'images', label, file));
      items.push({ label, name: `images/${label}/${file}`, source: `${URL_BASE}/images/${label}/${file}` });
    }
  }
  writeFileSync(join(DATA, 'image-recipe.json'), JSON.stringify(IMAGE_RECIPE));
  cli(['finetune', '--model', join(ROOT, 'assets/models/mobilenet_v2'), '--data', 'images', '--out', 'cli-images',
    '--device', 'cpu', '--recipe', 'image-recipe.json']);
  const browser = await inBrowser('mobilenet_v2', { kind: 'image', items }, IMAGE_RECIPE, `${URL_BASE}/cli-images`);
  const report = compare('images', browser, 'cli-images');
  assert.deepEqual(report.classes, ['2', '9', '10']);
  assert.deepEqual(report.phases.map((p) => p.phase), ['head', 'finetune']);
});

test('text: the CLI and the browser API give the same report.json and weights', { timeout: 900_000 }, async () => {
  const lines = readFileSync(join(ROOT, 'assets', 'datasets', 'rotten_tomatoes.csv'), 'utf8').split(/\r?\n/);
  const pick = (label) => lines.filter((l) => l.endsWith(`,${label}`) && l.length < 120).slice(0, 6);
  writeFileSync(join(DATA, 'reviews.csv'), [lines[0], ...pick('fresh'), ...pick('rotten')].join('\n') + '\n');
  writeFileSync(join(DATA, 'text-recipe.json'), JSON.stringify(TEXT_RECIPE));
  cli(['finetune', '--model', join(ROOT, 'assets/models/all-MiniLM-L6-v2'), '--data', 'reviews.csv', '--out', 'cli-text',
    '--device', 'cpu', '--recipe', 'text-recipe.json']);
  const dataset = { kind: 'text', data: `${URL_BASE}/reviews.csv`, name: 'reviews.csv' };
  const browser = await inBrowser('all-MiniLM-L6-v2', dataset, TEXT_RECIPE, `${URL_BASE}/cli-text`);
  const report = compare('text', browser, 'cli-text');
  assert.deepEqual(report.classes, ['fresh', 'rotten']);
});

test('a page reloaded in epoch 2 of 3 of phase 2 resumes to the weights of a run never stopped', { timeout: 900_000 }, async () => {
  // The image folders the first test wrote (or write them now when run alone).
  const items = [];
  for (const label of ['2', '9', '10']) {
    for (const file of readdirSync(join(DATA, 'images', label)).sort()) {
      items.push({ label, name: `images/${label}/${file}`, source: `${URL_BASE}/images/${label}/${file}` });
    }
  }
  const recipe = { ...TEXT_RECIPE, text: undefined, finetune: { ...TEXT_RECIPE.finetune, epochs: 3 } };
  const { page, consoleLines } = await open(ctx, `${URL_BASE}/blank.html`);
  const fail = (err) => {
    throw new Error(`${err.message}; console: ${consoleLines.join(' | ')}`);
  };
  // The whole run, saved in the browser; then the same run, reloaded in epoch 2 of phase 2.
  await page.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    await FineTuner.discardRun();
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    await tuner.train(recipe);
    await tuner.save('uninterrupted');
    tuner.terminate();
  }, { items, recipe }).catch(fail);
  const reloaded = page.waitForEvent('load');
  page.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    // Reload in epoch 2 of phase 2: once the API has stored the checkpoint after epoch 1.
    await tuner.train(recipe, {
      onProgress: (e) => {
        if (e.kind === 'checkpoint' && e.epoch === 1 && !e.error) location.reload();
      },
    });
  }, { items, recipe }).catch(() => {});
  await reloaded;
  const out = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const pending = await FineTuner.pendingRun();
    const resumer = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const events = [];
    const report = await resumer.resume({ onProgress: (e) => events.push(`${e.kind}:${e.phase ?? ''}:${e.epoch ?? ''}`) });
    const ours = (await resumer.export()).files['model.safetensors'];
    resumer.terminate();
    const whole = await FineTuner.create({ model: { saved: 'uninterrupted' }, device: 'cpu' });
    const theirs = (await whole.export()).files['model.safetensors'];
    whole.terminate();
    await FineTuner.remove('uninterrupted');
    let maxDiff = ours.length === theirs.length ? 0 : Infinity;
    const a = new DataView(ours.buffer, ours.byteOffset);
    const b = new DataView(theirs.buffer, theirs.byteOffset);
    for (let i = 0; maxDiff !== Infinity && i + 4 <= ours.length; i += 4) {
      if (a.getUint32(i, true) !== b.getUint32(i, true)) maxDiff = Math.max(maxDiff, Math.abs(a.getFloat32(i, true) - b.getFloat32(i, true)) || Infinity);
    }
    return { pending, resumedAfter: report.resumed_after, phases: report.phases.map((p) => p.phase), events: [...new Set(events)], maxDiff };
  }).catch(fail);
  console.log(`reloaded in phase 2, resumed: ${JSON.stringify(out)}`);
  assert.deepEqual([out.pending?.phase, out.pending?.epoch], ['finetune', 1]);
  assert.equal(out.resumedAfter, 'finetune epoch 1');
  assert.deepEqual(out.phases, ['head', 'finetune']);
  assert.ok(!out.events.some((e) => e.includes(':head:')), `the head phase ran again: ${out.events}`);
  assert.ok(!out.events.includes('epoch:finetune:1'), `epoch 1 ran again: ${out.events}`);
  assert.ok(out.events.includes('epoch:finetune:2') && out.events.includes('checkpoint:finetune:2'), `${out.events}`);
  assert.ok(out.maxDiff <= 1e-6, `weights differ by ${out.maxDiff}`);
});
