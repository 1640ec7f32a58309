// Speech transcription in the page (issue 19), on the wasm CPU backend (`?device=cpu`):
// Whisper tiny.en from the bundled assets, a folder of eight clips of the medical demo set
// picked as a user picks one (train/ and val/ with a metadata.csv each; one row names a file
// that is not there), the decoder fine-tuned for a few steps, the error rates before and
// after, then a held-out clip transcribed with the word the model learnt ("lisinopril", which
// tiny.en hears as "this in April") beside the original model's transcript, and the export.
// Then one step on WebGPU: one clip, the same first loss as on the CPU backend. That one is
// about 8 minutes of SwiftShader (a GPU emulated on the CPU), so `make test` skips it and
// `make test-webgpu-full` runs it (TABTUNE_SLOW=1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { start, open, OUTPUT, assertPrivate } from './browser.mjs';

const DATA = join(process.cwd(), 'assets', 'datasets', 'medical_speech');
const TRAIN = ['0013', '0014', '0043', '0044', '0141', '0142'];
const VAL = ['0001', '0005'];

let ctx;
let dir;
before(async () => {
  ctx = await start();
  // The folder a user would pick: rows of the set's own metadata, one broken row more.
  dir = join(tmpdir(), `tabtune-speech-${process.pid}`, 'clinic');
  const rows = (split, ids) => readFileSync(join(DATA, split, 'metadata.csv'), 'utf8').split('\n').filter((l) => ids.some((id) => l.startsWith(`${id}.wav,`)));
  for (const [split, ids] of [['train', TRAIN], ['val', VAL]]) {
    mkdirSync(join(dir, split), { recursive: true });
    for (const id of ids) copyFileSync(join(DATA, split, `${id}.wav`), join(dir, split, `${id}.wav`));
    const extra = split === 'train' ? ['missing.wav,This clip is not in the folder.'] : [];
    writeFileSync(join(dir, split, 'metadata.csv'), ['file_name,transcription', ...rows(split, ids), ...extra].join('\n') + '\n');
  }
});
after(async () => {
  await ctx?.stop();
  if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
});

/** The names of the files in a zip archive. */
function unzipNames(zip) {
  const names = [];
  for (let at = 0; at + 30 < zip.length; ) {
    if (zip.readUInt32LE(at) !== 0x04034b50) break;
    const size = zip.readUInt32LE(at + 18);
    const nameLen = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    names.push(zip.toString('utf8', at + 30, at + 30 + nameLen));
    at += 30 + nameLen + extra + size;
  }
  return names;
}

test('Whisper in the page: a picked folder of clips, the decoder fine-tuned, a held-out clip heard with the learnt word, exported', { timeout: 1_500_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/?device=cpu');
  const fail = async () => {
    const error = await page.locator('#status.error:not([hidden])').count();
    if (error) throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  };
  await page.selectOption('#model-select', 'whisper_tiny_en');
  await page.waitForSelector('#model-info[data-arch="whisper"]', { timeout: 300_000 });
  await page.waitForSelector('#record-speech:not([hidden])');

  await page.selectOption('#dataset-select', 'files');
  await page.setInputFiles('#dataset-folder', dir);
  await page.waitForFunction(() => Number(document.getElementById('dataset-summary').dataset.total ?? 0) === 8, null, { timeout: 120_000 });
  await fail();
  const summary = await page.textContent('#dataset-summary');
  assert.match(summary, /missing\.wav is missing/, 'the broken row is named');

  await page.$eval('#recipe-json', (e) => {
    const details = e.closest('details');
    if (details) details.open = true;
  });
  await page.fill('#recipe-json', JSON.stringify({ head: { epochs: 4, batch_size: 6, lr: 0.0001 }, finetune: null }));
  await page.dispatchEvent('#recipe-json', 'change');
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 60_000 });
  const t0 = Date.now();
  await page.click('#train');
  await page.waitForFunction(() => !document.getElementById('try-speech-record').disabled, null, { timeout: 1_200_000 });
  await fail();
  const wer = Number(await page.getAttribute('#accuracy', 'data-wer'));
  const before = Number(await page.getAttribute('#accuracy', 'data-wer-before'));
  console.log(`trained in ${((Date.now() - t0) / 1000).toFixed(0)} s; validation WER ${before} -> ${wer}`);
  assert.ok(wer < before, `validation WER ${before} -> ${wer}`);
  assert.ok(await page.locator('#transcripts:not([hidden])').count(), 'the transcripts are shown');
  await page.screenshot({ path: join(OUTPUT, 'speech-results.png'), fullPage: true });

  // A held-out clip: the fine-tuned model writes the drug's name, the original does not.
  await page.setInputFiles('#try-speech', join(dir, 'val', '0001.wav'));
  await page.waitForSelector('#speech-heard[data-text]', { timeout: 300_000 });
  const heard = await page.getAttribute('#speech-heard', 'data-text');
  const original = await page.getAttribute('#speech-heard', 'data-original');
  console.log(`fine-tuned: ${heard}\noriginal:   ${original}`);
  assert.match(heard, /lisinopril/i);
  assert.doesNotMatch(original, /lisinopril/i);

  // The export is a Hugging Face Whisper folder.
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export-zip')]);
  const names = unzipNames(readFileSync(await download.path()));
  for (const file of ['model.safetensors', 'config.json', 'tokenizer.json', 'generation_config.json', 'preprocessor_config.json']) {
    assert.ok(names.includes(file), `${file} in the export (${names.join(', ')})`);
  }
  assertPrivate({ foreign, consoleLines });
});

/** Train the page's Whisper on `folder` with `recipe` at `path`; the last step's loss as shown. */
async function trainInPage(path, folder, recipe, total) {
  const { page, foreign, consoleLines } = await open(ctx, path);
  await page.selectOption('#model-select', 'whisper_tiny_en');
  await page.waitForSelector('#model-info[data-arch="whisper"]', { timeout: 300_000 });
  await page.selectOption('#dataset-select', 'files');
  await page.setInputFiles('#dataset-folder', folder);
  await page.waitForFunction((n) => Number(document.getElementById('dataset-summary').dataset.total ?? 0) === n, total, { timeout: 120_000 });
  await page.$eval('#recipe-json', (e) => {
    const details = e.closest('details');
    if (details) details.open = true;
  });
  await page.fill('#recipe-json', JSON.stringify(recipe));
  await page.dispatchEvent('#recipe-json', 'change');
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 60_000 });
  const t0 = Date.now();
  await page.click('#train');
  await page.waitForSelector('#accuracy[data-phases="head"], #status.error:not([hidden])', { timeout: 900_000 });
  const error = await page.locator('#status.error:not([hidden])').count();
  if (error) throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  const device = await page.getAttribute('#device', 'data-state');
  const progress = await page.textContent('#progress-text');
  const loss = Number(progress.match(/loss (\d+\.\d+)/)?.[1]);
  console.log(`${path}: ${device}, ${((Date.now() - t0) / 1000).toFixed(0)} s: ${progress}`);
  assertPrivate({ foreign, consoleLines });
  await page.close();
  return { device, loss };
}

const SLOW = process.env.TABTUNE_SLOW === '1' ? false : 'about 8 minutes of SwiftShader: make test-webgpu-full runs it';

test('Whisper in the page on WebGPU: a training step on one clip, the loss the CPU backend gives', { timeout: 1_500_000, skip: SLOW }, async () => {
  const one = join(dir, '..', 'one');
  mkdirSync(one, { recursive: true });
  copyFileSync(join(dir, 'train', '0013.wav'), join(one, '0013.wav'));
  const row = readFileSync(join(dir, 'train', 'metadata.csv'), 'utf8').split('\n').find((l) => l.startsWith('0013.wav,'));
  writeFileSync(join(one, 'metadata.csv'), `file_name,transcription\n${row}\n`);
  const recipe = { head: { epochs: 1, batch_size: 1, lr: 0.0001 }, finetune: null, val_fraction: 0 };
  const cpu = await trainInPage('/?device=cpu', one, recipe, 1);
  const gpu = await trainInPage('/?device=gpu', one, recipe, 1);
  assert.equal(cpu.device, 'cpu');
  assert.equal(gpu.device, 'webgpu');
  assert.ok(cpu.loss > 0.1, `a first step's loss: ${cpu.loss}`);
  assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-3 * cpu.loss, `WebGPU loss ${gpu.loss} vs CPU ${cpu.loss}`);
});
