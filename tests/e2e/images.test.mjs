// Image fine-tuning as a person runs it in the tab: MobileNetV2 on the demo digits, phase 1 and
// phase 2 on WebGPU, images decoded by the browser one at a time. The CLI runs the same recipe
// and seed on the same images; both must report the same head-only accuracy (within a point).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, open, OUTPUT } from './browser.mjs';

const PER_CLASS = 3;
const HEAD_EPOCHS = 10;
const CLI = join('target', 'release', 'tabtune');

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

// The images the page takes: the first PER_CLASS of each class in assets/index.json's order.
function demoSubset() {
  const index = JSON.parse(readFileSync('assets/index.json', 'utf8'));
  const mnist = index.datasets.find((d) => d.name === 'mnist');
  const dir = mkdtempSync(join(tmpdir(), 'tabtune-e2e-'));
  const taken = new Map();
  for (const file of mnist.files) {
    const cls = file.split('/').at(-2);
    if ((taken.get(cls) ?? 0) >= PER_CLASS) continue;
    taken.set(cls, (taken.get(cls) ?? 0) + 1);
    mkdirSync(join(dir, cls), { recursive: true });
    cpSync(file, join(dir, cls, file.split('/').at(-1)));
  }
  return dir;
}

test('the tab fine-tunes MobileNetV2 in two phases and agrees with the CLI', { timeout: 1_500_000 }, async () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: make test builds it in test-native`);
  const data = demoSubset();
  const out = `${data}.out`;
  let cli;
  try {
    cli = execFileSync(CLI, [
      'finetune', '--device', 'cpu', '--model', 'assets/models/mobilenet_v2', '--data', data,
      '--epochs', String(HEAD_EPOCHS), '--no-finetune', '--out', out,
    ], { encoding: 'utf8' });
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
  const cliReport = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).report;
  rmSync(out, { recursive: true, force: true });
  const cliHead = cliReport.phases[0];
  const cliAccuracy = cliHead.val_accuracy[cliHead.best_epoch - 1];
  console.log(`CLI head-only: ${cli.split('\n').filter((l) => l.startsWith('head:')).join('')}`);

  const { page, foreign, consoleLines } = await open(ctx, '/');
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, {
    timeout: 60_000,
  });
  assert.equal(await page.locator('#device').getAttribute('data-state'), 'webgpu');
  await page.fill('#per-class', String(PER_CLASS));
  await page.fill('#head-epochs', String(HEAD_EPOCHS));
  await page.fill('#ft-epochs', '1');
  await page.selectOption('#unfreeze', '1');
  await page.click('#finetune');
  await page.waitForSelector('#ft-result[data-final-accuracy], #ft-status.error', { timeout: 1_400_000 });
  await page.screenshot({ path: join(OUTPUT, 'finetune-webgpu.png'), fullPage: true });
  const status = await page.textContent('#ft-status');
  const result = await page.$eval('#ft-result', (el) => ({ ...el.dataset, text: el.textContent }));
  console.log(`page: ${result.text}`);
  assert.equal(status, 'Done.', `${status}; console: ${consoleLines.join(' | ')}`);
  assert.equal(result.phases, 'head,finetune');
  const pageHead = Number(result.headAccuracy);
  const pageFinal = Number(result.finalAccuracy);
  console.log(`head-only accuracy: page ${pageHead}, CLI ${cliAccuracy}; after phase 2: ${pageFinal}`);
  assert.ok(Math.abs(pageHead - cliAccuracy) <= 0.01, `page ${pageHead} vs CLI ${cliAccuracy}`);
  assert.ok(pageFinal >= 0 && pageFinal <= 1);
  assert.equal(await page.locator('#ft-download').isVisible(), true);
  // The download, as the user gets it: safetensors with torchvision's names and the new head.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ft-download')]);
  const bytes = readFileSync(await download.path());
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8'));
  assert.deepEqual(header['classifier.1.weight'].shape, [10, 1280]);
  assert.ok('features.18.1.num_batches_tracked' in header);
  assert.deepEqual(foreign, [], 'requests left the page origin');
});
