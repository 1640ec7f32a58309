// The page as a person uses it (issue 5): pick the bundled model and demo dataset, train the
// head then the whole model on WebGPU, read accuracy and the confusion matrix, try an example,
// export the zip, save in the browser, reload the page, load the saved model and get the same
// prediction; for images (on WebGPU) and for text (on the CPU fallback, for time). Then the same
// image flow without WebGPU, on the CPU fallback with its notice. Screenshots of each step go to
// test-results/e2e/app-*.png. The head phase's accuracy must equal the CLI's on the same rows,
// recipe and seed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, open, OUTPUT, assertPrivate } from './browser.mjs';

const CLI = join('target', 'release', 'tabtune');
const INDEX = JSON.parse(readFileSync('assets/index.json', 'utf8'));

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

const shot = (page, name) => page.screenshot({ path: join(OUTPUT, `app-${name}.png`), fullPage: true });

/** Wait for `selector`, failing early with the page's error line when one shows. */
async function settle(page, selector, timeout, consoleLines) {
  await page.waitForSelector(`${selector}, #status.error:not([hidden])`, { timeout });
  const error = await page.locator('#status.error:not([hidden])').count();
  if (error) {
    const text = await page.textContent('#status');
    throw new Error(`the page says: ${text}; console: ${consoleLines.slice(-20).join(' | ')}`);
  }
}

/** The CLI's head-only validation accuracy on `dir` (a class-folder tree or a CSV). */
function cliHeadAccuracy(model, data, args) {
  const out = mkdtempSync(join(tmpdir(), 'tabtune-app-cli-'));
  try {
    execFileSync(CLI, ['finetune', '--device', 'cpu', '--model', model, '--data', data, '--no-finetune', '--out', out, ...args], {
      encoding: 'utf8',
    });
    const head = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).report.phases[0];
    return head.val_accuracy[head.best_epoch - 1];
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Steps 1-3 of the page for `flow`; returns what the person saw. */
async function personFlow(page, consoleLines, flow, { expect = 'webgpu', tag = flow.tag } = {}) {
  // 1. Data: the bundled model, the demo dataset, a few examples per class.
  await page.selectOption('#model-select', flow.model);
  await settle(page, `#model-info[data-arch="${flow.arch}"]`, 240_000, consoleLines);
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, { timeout: 120_000 });
  const device = await page.getAttribute('#device', 'data-state');
  assert.equal(device, expect, `device ${device}`);
  const info = await page.$eval('#model-info', (e) => ({ ...e.dataset, text: e.textContent }));
  await page.fill('#per-class', String(flow.perClass));
  await page.selectOption('#dataset-select', flow.dataset);
  await settle(page, `#dataset-summary[data-total="${flow.total}"]`, 120_000, consoleLines);
  const classes = await page.$$eval('#class-list > *', (els) => els.length);
  await shot(page, `${tag}-1-data`);

  // 2. Train: head then full fine-tuning of the top block/layer.
  await page.selectOption('#preset', 'full');
  await page.fill('#head-epochs', String(flow.headEpochs));
  await page.fill('#ft-epochs', '1');
  await page.selectOption('#unfreeze', '1');
  await page.click('#train');
  await settle(page, '#accuracy[data-accuracy]', 1_500_000, consoleLines);
  const accuracy = Number(await page.getAttribute('#accuracy', 'data-accuracy'));
  const headAccuracy = Number(await page.getAttribute('#accuracy', 'data-head-accuracy'));
  const phases = await page.getAttribute('#accuracy', 'data-phases');
  const confusion = await page.$eval('#confusion', (t) => ({ total: Number(t.dataset.total), cells: t.querySelectorAll('td').length }));
  const perClassRows = await page.$$eval('#per-class-metrics tbody tr', (rows) => rows.length);
  await shot(page, `${tag}-2-train`);

  // 3. Try it, export, save.
  const tried = await flow.try(page);
  await settle(page, '#prediction[data-top]', 300_000, consoleLines);
  const prediction = await page.$eval('#prediction', (e) => ({ top: e.dataset.top, probability: Number(e.dataset.probability) }));
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export-zip')]);
  const zip = readFileSync(await download.path());
  await page.fill('#save-name', `${tag}-model`);
  await page.click('#save');
  await settle(page, `#saved-list button.load[data-name="${tag}-model"]`, 300_000, consoleLines);
  await shot(page, `${tag}-3-try-export`);

  // After a reload: the saved model, the same example, the same prediction.
  await page.reload();
  await page.click(`#saved-list button.load[data-name="${tag}-model"]`);
  await settle(page, `#model-info[data-arch="${flow.arch}"]`, 240_000, consoleLines);
  await page.waitForSelector(flow.ready, { timeout: 60_000 });
  await flow.try(page);
  await settle(page, '#prediction[data-top]', 300_000, consoleLines);
  const again = await page.$eval('#prediction', (e) => ({ top: e.dataset.top, probability: Number(e.dataset.probability) }));
  await shot(page, `${tag}-4-reloaded`);
  return { device, info, classes, accuracy, headAccuracy, phases, confusion, perClassRows, tried, prediction, again, zip };
}

function checkFlow(run, flow) {
  console.log(`${flow.tag}: ${JSON.stringify({ ...run, zip: run.zip.length, info: run.info.text })}`);
  assert.equal(run.classes, flow.classes);
  assert.equal(run.phases, 'head,finetune');
  assert.ok(run.accuracy >= 0 && run.accuracy <= 1);
  assert.equal(run.confusion.total, flow.val, 'the confusion matrix counts every validation example');
  assert.equal(run.confusion.cells, flow.classes * flow.classes);
  assert.equal(run.perClassRows, flow.classes);
  for (const name of ['model.safetensors', 'config.json', 'report.json', ...flow.files]) {
    assert.ok(run.zip.includes(Buffer.from(name)), `${name} is not in the exported zip`);
  }
  assert.equal(run.again.top, run.prediction.top, 'the reloaded model predicts another class');
  assert.ok(Math.abs(run.again.probability - run.prediction.probability) < 1e-5, `${run.again.probability} vs ${run.prediction.probability}`);
}

const mnist = INDEX.datasets.find((d) => d.name === 'mnist');
const IMAGES = {
  tag: 'images',
  model: 'mobilenet_v2',
  arch: 'mobilenet_v2',
  dataset: 'mnist',
  perClass: 3,
  total: 30,
  classes: 10,
  val: 10, // round(3 * 0.2) = 1 per class
  headEpochs: 5,
  files: [],
  example: mnist.files.find((f) => f.split('/').at(-2) === '3'),
  ready: '#try-image:not([disabled])',
  try: async (page) => page.setInputFiles('#try-image', IMAGES.example),
};

// The first `n` images of each class, as the page takes them, in a class-folder tree.
function imageSubset(n) {
  const dir = mkdtempSync(join(tmpdir(), 'tabtune-app-'));
  const taken = new Map();
  for (const file of mnist.files) {
    const cls = file.split('/').at(-2);
    if ((taken.get(cls) ?? 0) >= n) continue;
    taken.set(cls, (taken.get(cls) ?? 0) + 1);
    mkdirSync(join(dir, cls), { recursive: true });
    cpSync(file, join(dir, cls, file.split('/').at(-1)));
  }
  return dir;
}

test('a person fine-tunes, tries, exports, saves and reloads an image model', { timeout: 1_800_000 }, async () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: make test builds it in test-native`);
  const data = imageSubset(IMAGES.perClass);
  let cli;
  try {
    cli = cliHeadAccuracy('assets/models/mobilenet_v2', data, ['--epochs', String(IMAGES.headEpochs)]);
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
  const { page, foreign, consoleLines } = await open(ctx, '/');
  const run = await personFlow(page, consoleLines, IMAGES);
  checkFlow(run, IMAGES);
  console.log(`images head-only accuracy: page ${run.headAccuracy}, CLI ${cli}`);
  assert.ok(Math.abs(run.headAccuracy - cli) <= 0.01, `page ${run.headAccuracy} vs CLI ${cli}`);
  assert.match(run.info.text, /3\.5\s*M/);
  assertPrivate({ foreign, consoleLines });
});

const TEXT = {
  tag: 'text',
  model: 'all-MiniLM-L6-v2',
  arch: 'bert',
  dataset: 'rotten_tomatoes',
  perClass: 10,
  total: 20,
  classes: 2,
  val: 4, // round(10 * 0.2) = 2 per class
  headEpochs: 10,
  files: ['tokenizer.json', 'vocab.txt'],
  ready: '#try-text:not([disabled])',
  try: async (page) => {
    await page.fill('#try-text', 'A gorgeous, witty, seductive movie.');
    await page.click('#try-text-go');
  },
};

test('a person fine-tunes, tries, exports, saves and reloads a text model', { timeout: 1_800_000 }, async () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: make test builds it in test-native`);
  const cli = cliHeadAccuracy('assets/models/all-MiniLM-L6-v2', 'assets/datasets/rotten_tomatoes.csv', [
    '--epochs', String(TEXT.headEpochs), '--per-class', String(TEXT.perClass),
  ]);
  // On the CPU fallback: the page's text flow is what is tested, and on SwiftShader's emulated
  // GPU it takes 7 minutes (12x); MiniLM trains on WebGPU in the example page's test
  // (api.test.mjs), and tests/web.rs checks its step there against the CPU backend.
  const { page, foreign, consoleLines } = await open(ctx, '/', { noNavigatorGpu: true });
  const run = await personFlow(page, consoleLines, TEXT, { expect: 'cpu' });
  checkFlow(run, TEXT);
  console.log(`text head-only accuracy: page ${run.headAccuracy}, CLI ${cli}`);
  assert.ok(Math.abs(run.headAccuracy - cli) <= 0.01, `page ${run.headAccuracy} vs CLI ${cli}`);
  assertPrivate({ foreign, consoleLines });
});

test('without WebGPU the same image flow completes on the CPU fallback and says so', { timeout: 1_800_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/', { noNavigatorGpu: true });
  assert.equal(await page.evaluate(() => 'gpu' in navigator), false);
  const run = await personFlow(page, consoleLines, IMAGES, { expect: 'cpu', tag: 'images-cpu' });
  const notice = await page.locator('#fallback');
  assert.equal(await notice.isVisible(), true, 'the CPU notice is hidden');
  const text = await notice.textContent();
  console.log(`notice: ${text}`);
  assert.match(text, /navigator\.gpu is missing/);
  checkFlow(run, IMAGES);
  assertPrivate({ foreign, consoleLines });
});

test('when the browser refuses a WebGPU adapter the page says so and uses the CPU', { timeout: 300_000 }, async () => {
  const refusing = await start({ webgpu: false });
  try {
    const { page } = await open(refusing, '/');
    await page.selectOption('#model-select', 'all-MiniLM-L6-v2');
    await page.waitForSelector('#model-info[data-arch="bert"]', { timeout: 240_000 });
    assert.equal(await page.getAttribute('#device', 'data-state'), 'cpu');
    const text = await page.locator('#fallback').textContent();
    console.log(`notice: ${text}`);
    assert.match(text, /returned no adapter/);
    await shot(page, 'adapter-refused');
  } finally {
    await refusing.stop();
  }
});
