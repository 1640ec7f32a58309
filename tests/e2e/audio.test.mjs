// Audio in the page (issue 17): Chromium's fake microphone plays a WAV made of "yes" said over
// and over (espeak-ng, 6 s) then the demo set's background noise (12 s), looped. The page records three "yes"
// clips and a 10 s background take from it, trains the speech_embedding head, and the live
// try follows the input: "yes" while the words play, "background" while the noise does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { start, open, OUTPUT, assertPrivate } from './browser.mjs';

const DATA = join(process.cwd(), 'assets', 'datasets', 'commands');
const SPEECH_S = 6;
const PERIOD_S = 18;

/** The 16-bit mono samples and rate of a PCM WAV (the demo set's own files). */
function readWav(path) {
  const b = readFileSync(path);
  let at = 12;
  let rate = 0;
  while (at < b.length) {
    const id = b.toString('ascii', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === 'fmt ') rate = b.readUInt32LE(at + 12);
    if (id === 'data') return { rate, samples: new Int16Array(b.buffer.slice(b.byteOffset + at + 8, b.byteOffset + at + 8 + size)) };
    at += 8 + size + (size % 2);
  }
  throw new Error(`${path}: no data chunk`);
}

/** `seconds` of the clips of `cls` one after the other. */
function take(cls, seconds) {
  const files = readdirSync(join(DATA, cls)).filter((f) => f.endsWith('.wav')).sort();
  const parts = [];
  let rate = 0;
  let n = 0;
  for (const f of files) {
    const wav = readWav(join(DATA, cls, f));
    rate = wav.rate;
    parts.push(wav.samples);
    n += wav.samples.length;
    if (n >= seconds * rate) break;
  }
  const out = new Int16Array(Math.round(seconds * rate));
  let at = 0;
  for (const p of parts) {
    out.set(p.subarray(0, Math.min(p.length, out.length - at)), at);
    at += p.length;
    if (at >= out.length) break;
  }
  return { rate, samples: out };
}

function writeWav(path, rate, samples) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples.length * 2, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples.length * 2, 40);
  writeFileSync(path, Buffer.concat([header, Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)]));
}

mkdirSync(OUTPUT, { recursive: true });
// The words: espeak-ng (installed by `make setup`) saying "yes" again and again, repeated to fill
// the part (the demo clips hold one short word each in noise: too sparse for any window).
function spoken(word, seconds) {
  const file = join(OUTPUT, `fake-${word}.wav`);
  execFileSync('espeak-ng', ['-s', '150', '-w', file, Array(8).fill(`${word}.`).join(' ')]);
  const { rate, samples } = readWav(file);
  const out = new Int16Array(Math.round(seconds * rate));
  for (let at = 0; at < out.length; at += samples.length) out.set(samples.subarray(0, out.length - at), at);
  return { rate, samples: out };
}

const speech = spoken('yes', SPEECH_S);
const noise = take('background', PERIOD_S - SPEECH_S);
const wav = join(OUTPUT, 'fake-microphone.wav');
const both = new Int16Array(speech.samples.length + noise.samples.length);
both.set(speech.samples);
both.set(noise.samples, speech.samples.length);
writeWav(wav, speech.rate, both);

let ctx;
before(async () => {
  ctx = await start({
    args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
  });
});
after(async () => ctx?.stop());

test('the page records two classes from the microphone, trains, and the live try follows the input', { timeout: 900_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/');
  const fail = async () => {
    const error = await page.locator('#status.error:not([hidden])').count();
    if (error) throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  };
  await page.selectOption('#model-select', 'speech_embedding');
  await page.waitForSelector('#model-info[data-arch="speech_embedding"]', { timeout: 240_000 });
  await page.waitForFunction(() => document.getElementById('device').dataset.state !== 'pending', null, { timeout: 120_000 });
  // Where the microphone is in the looped file, in seconds.
  const phase = async () => Number((await page.getAttribute('#mic-level', 'data-seconds')) ?? 0) % PERIOD_S;
  const waitPhase = async (lo, hi) => {
    for (let i = 0; i < 400; i++) {
      const t = await phase();
      if (t >= lo && t < hi) return t;
      await page.waitForTimeout(50);
    }
    throw new Error(`the microphone never reached ${lo}-${hi} s of its file`);
  };

  // Three "yes" clips while the words play (the first click opens the microphone).
  await page.fill('#record-class', 'yes');
  for (let i = 0; i < 3; i++) {
    if (i > 0) await waitPhase(0.2, SPEECH_S - 1.8);
    await page.click('#record-clip');
    await page.waitForFunction((n) => (document.getElementById('record-status').textContent.match(/(\d+) recorded/) ?? [])[1] === String(n), i + 1, { timeout: 120_000 });
    await fail();
  }
  // 10 s of background while the noise plays.
  await waitPhase(SPEECH_S + 0.3, SPEECH_S + 1.5);
  await page.click('#record-background');
  await page.waitForFunction(() => /Recorded “background”/.test(document.getElementById('record-status').textContent), null, { timeout: 120_000 });
  await page.waitForSelector('#dataset-summary[data-total="4"]', { timeout: 120_000 });
  await fail();
  // Each class shows its recordings as waveforms that play on click.
  const waves = await page.$$eval('#class-list li[data-label]', (lis) => lis.map((li) => [li.dataset.label, li.querySelectorAll('canvas.wave').length]));
  assert.deepEqual(Object.fromEntries(waves), { background: 1, yes: 3 });

  // Train the head alone (every example in training: four recordings are too few to hold out).
  await page.$eval('#recipe-json', (e) => {
    const details = e.closest('details');
    if (details) details.open = true;
  });
  await page.fill('#recipe-json', JSON.stringify({ finetune: null, head: { epochs: 40, lr: 0.01 }, val_fraction: 0 }));
  await page.dispatchEvent('#recipe-json', 'change');
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 60_000 });
  await page.click('#train');
  await page.waitForFunction(() => !document.getElementById('try-listen').disabled, null, { timeout: 600_000 });
  await fail();

  // The live try, sampled in the middle of each part of the file, twice round.
  await page.click('#try-listen');
  await page.waitForSelector('#prediction[data-live]', { timeout: 300_000 });
  const seen = { speech: [], noise: [] };
  for (let round = 0; round < 2; round++) {
    await waitPhase(3.5, SPEECH_S - 0.5);
    await page.waitForTimeout(700);
    seen.speech.push(await page.getAttribute('#prediction', 'data-live'));
    await waitPhase(SPEECH_S + 4, PERIOD_S - 3);
    await page.waitForTimeout(700);
    seen.noise.push(await page.getAttribute('#prediction', 'data-live'));
  }
  await page.click('#try-listen-stop');
  await page.screenshot({ path: join(OUTPUT, 'audio-live.png'), fullPage: true });
  console.log(`live try: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.speech, ['yes', 'yes'], `while "yes" played: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen.noise, ['background', 'background'], `while noise played: ${JSON.stringify(seen)}`);
  assertPrivate({ foreign, consoleLines });
});
