// Text in the tab: all-MiniLM-L6-v2 on WebGPU against the PyTorch reference (token ids, last
// hidden states, sentence embeddings), then the page's text panel fine-tunes it on the demo
// rotten-tomatoes snippets in two phases; the CLI runs the same recipe and seed on the same
// rows and both must report the same head-only accuracy (within a point).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, open, OUTPUT } from './browser.mjs';

const PER_CLASS = 20;
const HEAD_EPOCHS = 10;
const CLI = join('target', 'release', 'tabtune');
const MODEL = 'assets/models/all-MiniLM-L6-v2';
const FIXTURES = 'tests/fixtures/all-minilm-l6-v2';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

// A little-endian float32 .npy file as a flat array.
function npy(path) {
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(1, 6).toString('latin1'), 'NUMPY');
  const headerLen = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
  assert.match(header, /'descr': '<f4'/);
  const data = bytes.subarray(10 + headerLen);
  return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
}

// ||a - b|| / ||b||.
function relErr(a, b) {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

test('all-MiniLM-L6-v2 on WebGPU matches PyTorch from the text up', { timeout: 600_000 }, async () => {
  const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8'));
  const { page, foreign, consoleLines } = await open(ctx, '/');
  const out = await page.evaluate(
    async ({ sentences, base }) => {
      const { default: init, Session } = await import('/www/pkg/tabtune.js');
      await init();
      const session = await Session.create('gpu');
      const get = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
      const files = {
        weights: await get('model.safetensors'),
        tokenizer: await get('tokenizer.json'),
        config: new TextDecoder().decode(await get('config.json')),
        name: 'all-MiniLM-L6-v2',
      };
      const r = await session.embedText(files, sentences);
      return {
        backend: session.device.backend,
        ids: r.ids,
        mask: r.mask,
        dims: r.dims,
        hidden: Array.from(r.hidden),
        embeddings: Array.from(r.embeddings),
      };
    },
    { sentences: reference.sentences, base: `/${MODEL}/` },
  ).catch((err) => {
    throw new Error(`${err.message}; console: ${consoleLines.join(' | ')}`);
  });
  assert.equal(out.backend, 'webgpu');
  assert.deepEqual(out.ids, reference.input_ids.flat());
  assert.deepEqual(out.mask, reference.attention_mask.flat());
  assert.deepEqual(out.dims, [3, 15, 384]);
  const hidden = relErr(out.hidden, npy(join(FIXTURES, 'ref_last_hidden_state.npy')));
  const embeddings = relErr(out.embeddings, npy(join(FIXTURES, 'ref_sentence_embeddings.npy')));
  console.log(`WebGPU vs PyTorch: last_hidden_state rel err ${hidden.toExponential(2)}, ` +
    `sentence embeddings ${embeddings.toExponential(2)}`);
  assert.ok(hidden <= 1e-4, `last_hidden_state rel err ${hidden}`);
  assert.ok(embeddings <= 1e-4, `sentence embeddings rel err ${embeddings}`);
  assert.deepEqual(foreign, [], 'requests left the page origin');
  await page.close();
});

test('the tab fine-tunes MiniLM in two phases and agrees with the CLI', { timeout: 1_500_000 }, async () => {
  assert.ok(existsSync(CLI), `${CLI} is missing: make test builds it in test-native`);
  const out = mkdtempSync(join(tmpdir(), 'tabtune-e2e-text-'));
  let cli;
  let cliReport;
  let cliConfig;
  try {
    cli = execFileSync(CLI, [
      'finetune', '--device', 'cpu', '--model', MODEL, '--data', 'assets/datasets/rotten_tomatoes.csv',
      '--per-class', String(PER_CLASS), '--epochs', String(HEAD_EPOCHS), '--no-finetune', '--out', out,
    ], { encoding: 'utf8' });
    cliReport = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).report;
    cliConfig = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const cliHead = cliReport.phases[0];
  const cliAccuracy = cliHead.val_accuracy[cliHead.best_epoch - 1];
  console.log(`CLI head-only: ${cli.split('\n').filter((l) => l.startsWith('head:')).join('')}`);
  assert.equal(cliConfig.architectures[0], 'BertForSequenceClassification');

  const { page, foreign, consoleLines } = await open(ctx, '/');
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, {
    timeout: 60_000,
  });
  assert.equal(await page.locator('#device').getAttribute('data-state'), 'webgpu');
  await page.fill('#tx-per-class', String(PER_CLASS));
  await page.fill('#tx-head-epochs', String(HEAD_EPOCHS));
  await page.fill('#tx-ft-epochs', '1');
  await page.selectOption('#tx-unfreeze', '1');
  await page.click('#finetune-text');
  await page.waitForSelector('#tx-result[data-final-accuracy], #tx-status.error', { timeout: 1_400_000 });
  await page.screenshot({ path: join(OUTPUT, 'finetune-text-webgpu.png'), fullPage: true });
  const status = await page.textContent('#tx-status');
  const result = await page.$eval('#tx-result', (el) => ({ ...el.dataset, text: el.textContent }));
  console.log(`page: ${result.text}`);
  assert.equal(status, 'Done.', `${status}; console: ${consoleLines.join(' | ')}`);
  assert.equal(result.phases, 'head,finetune');
  const pageHead = Number(result.headAccuracy);
  console.log(`head-only accuracy: page ${pageHead}, CLI ${cliAccuracy}; after phase 2: ${result.finalAccuracy}`);
  assert.ok(Math.abs(pageHead - cliAccuracy) <= 0.01, `page ${pageHead} vs CLI ${cliAccuracy}`);
  // The download: Hugging Face's BertForSequenceClassification names, the new 2-class head.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#tx-download')]);
  const bytes = readFileSync(await download.path());
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString('utf8'));
  assert.deepEqual(header['classifier.weight'].shape, [2, 384]);
  assert.deepEqual(header['bert.encoder.layer.5.output.LayerNorm.weight'].shape, [384]);
  assert.deepEqual(foreign, [], 'requests left the page origin');
});
