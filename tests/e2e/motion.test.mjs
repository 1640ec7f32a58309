// Sensors in the page (issue 18): a scripted DeviceMotionEvent source plays "walking" (a 2 Hz
// sway of the accelerometer and gyroscope around gravity) and "still" (gravity and sensor
// noise) into the page, as a phone's motion sensors would. The page records each class for
// two people, fine-tunes the activity model (humanactivity's Conv1D: new head for the two
// classes, then every layer), shows the confusion matrix of the held-out person, follows the
// live sensors in the try, exports the model, saves it, and after a reload the saved model
// still tells walking from still. Both tests run on the wasm CPU backend (`?device=cpu`): the
// flow is under test here, and the series networks on WebGPU are checked against Keras and
// onnxruntime in tests/web.rs (SwiftShader, a GPU emulated on the CPU, made these two tests
// take 4 minutes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, open, OUTPUT, assertPrivate, unzip } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

/**
 * In the page: play `kind` ('walking', 'still', or a sway amplitude: 'walking' is 1) into
 * `devicemotion` events at 50 Hz until `stop()`.
 */
async function play(page, kind) {
  await page.evaluate((kind) => {
    clearInterval(window.__motionTimer);
    let i = 0;
    let seed = 7;
    const noise = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return (seed / 2147483648 - 0.5) * 0.2;
    };
    window.__motionTimer = setInterval(() => {
      const t = (i++) / 50;
      const w = typeof kind === 'number' ? kind : kind === 'walking' ? 1 : 0;
      const s = Math.sin(2 * Math.PI * 2 * t);
      const c = Math.cos(2 * Math.PI * 2 * t);
      window.dispatchEvent(new DeviceMotionEvent('devicemotion', {
        accelerationIncludingGravity: { x: 3 * w * s + noise(), y: 9.81 + 4 * w * c + noise(), z: 1.5 * w * s + noise() },
        acceleration: { x: 0, y: 0, z: 0 },
        rotationRate: { alpha: 40 * w * c + noise(), beta: 60 * w * s + noise(), gamma: 20 * w * c + noise() },
        interval: 20,
      }));
    }, 20);
  }, kind);
}


const stop = (page) => page.evaluate(() => clearInterval(window.__motionTimer));

test('the page records the motion sensors for two classes, fine-tunes, shows the results, follows the live sensors, exports and reloads', { timeout: 1_200_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/?device=cpu');
  const fail = async () => {
    const error = await page.locator('#status.error:not([hidden])').count();
    if (error) throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  };
  await page.selectOption('#model-select', 'har_conv1d');
  await page.waitForSelector('#model-info[data-arch="har_conv1d"]', { timeout: 240_000 });
  await page.waitForSelector('#record-motion:not([hidden])');

  // Two people, two classes each, 12 s a recording.
  for (const person of ['anna', 'ben']) {
    for (const kind of ['walking', 'still']) {
      await page.fill('#motion-group', person);
      await page.fill('#motion-class', kind);
      await play(page, kind);
      await page.click('#motion-record');
      await page.waitForFunction(() => Number(document.getElementById('motion-status').dataset.samples ?? 0) >= 600, null, { timeout: 60_000 });
      await page.click('#motion-stop');
      await stop(page);
      await fail();
    }
  }
  await page.waitForSelector('#motion-recordings[data-count="4"]');
  // Each recording is drawn as a small plot of its channels.
  const plotted = await page.$$eval('#motion-recordings figure canvas', (cs) => cs.map((c) => Number(c.dataset.samples ?? 0)));
  assert.equal(plotted.length, 4);
  assert.ok(plotted.every((n) => n >= 600), `plots of ${plotted} samples`);
  await page.waitForFunction(() => Number(document.getElementById('dataset-summary').dataset.classes) === 2, null, { timeout: 120_000 });
  await fail();

  // Half of the people held out (val_fraction 0.5: one person), the head then every layer.
  await page.$eval('#recipe-json', (e) => {
    const details = e.closest('details');
    if (details) details.open = true;
  });
  await page.fill('#recipe-json', JSON.stringify({ val_fraction: 0.5, head: { epochs: 15, batch_size: 8, lr: 0.003 }, finetune: { epochs: 3, batch_size: 8 }, series: { stride_s: 0.5 } }));
  await page.dispatchEvent('#recipe-json', 'change');
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 60_000 });
  await page.click('#train');
  await page.waitForFunction(() => !document.getElementById('try-motion').disabled, null, { timeout: 900_000 });
  await fail();
  const accuracy = Number(await page.getAttribute('#accuracy', 'data-accuracy'));
  const total = Number(await page.getAttribute('#confusion', 'data-total'));
  console.log(`held-out person: accuracy ${accuracy} on ${total} windows`);
  assert.ok(total > 0, 'no confusion matrix');
  assert.ok(accuracy >= 0.9, `accuracy ${accuracy} on the held-out person (2 classes)`);

  // The live try follows the sensors.
  const seen = [];
  for (const kind of ['walking', 'still', 'walking']) {
    await play(page, kind);
    if (!seen.length) await page.click('#try-motion');
    await page.waitForTimeout(6_500);
    seen.push(await page.getAttribute('#prediction', 'data-live'));
  }
  await stop(page);
  await page.click('#try-motion-stop');
  await page.screenshot({ path: join(OUTPUT, 'motion-live.png'), fullPage: true });
  console.log(`live try: ${JSON.stringify(seen)}`);
  assert.deepEqual(seen, ['walking', 'still', 'walking']);

  // Export: config.json names the two classes and the three channels the network reads.
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export-zip')]);
  const zip = readFileSync(await download.path());
  const config = JSON.parse(unzip(zip, 'config.json').toString('utf8'));
  assert.deepEqual(config.output.labels, ['still', 'walking']);
  assert.deepEqual(config.input.channels, ['acc_x', 'acc_y', 'acc_z']);
  const weights = unzip(zip, 'model.safetensors');
  const header = JSON.parse(weights.toString('utf8', 8, 8 + Number(weights.readBigUInt64LE(0))));
  assert.deepEqual(header['fc2.weight'].shape, [2, 10000], 'the new head under the model\'s own name');
  assert.deepEqual(header['conv1.weight'].shape, [60, 3, 60]);
  await page.fill('#save-name', 'motion-model');
  await page.click('#save');
  await page.waitForSelector('#saved-list button.load[data-name="motion-model"]', { timeout: 300_000 });

  // After a reload, the saved model tells the classes apart live.
  await page.reload();
  await page.click('#saved-list button.load[data-name="motion-model"]');
  await page.waitForSelector('#model-info[data-arch="har_conv1d"]', { timeout: 240_000 });
  await page.waitForFunction(() => !document.getElementById('try-motion').disabled, null, { timeout: 120_000 });
  await play(page, 'walking');
  await page.click('#try-motion');
  await page.waitForTimeout(6_500);
  const again = await page.getAttribute('#prediction', 'data-live');
  await stop(page);
  await page.click('#try-motion-stop');
  assert.equal(again, 'walking', 'the reloaded model');
  assertPrivate({ foreign, consoleLines });
});

/** Bytes of a safetensors file of float32 `tensors` ({name: [shape, Float32Array]}). */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, [shape, data]] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.length * 4] };
    offset += data.length * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  let at = 8 + json.length;
  for (const [, [, data]] of Object.entries(tensors)) {
    Buffer.from(data.buffer, data.byteOffset, data.length * 4).copy(out, at);
    at += data.length * 4;
  }
  return out;
}

// A user's own regression model (issue 18: "a user's own trained policy or sensor model loads
// by name"): six motion channels at 50 Hz, 2 s windows, a convolution, ReLU, the mean over time
// and a linear output `amplitude` (per window), its weights seeded uniform at PyTorch's scale.
function swayModel() {
  let seed = 42;
  const uniform = (n, fanIn) => Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return ((seed / 2147483648) * 2 - 1) / Math.sqrt(fanIn);
  });
  const config = {
    architecture: 'series',
    name: 'sway',
    input: {
      channels: ['acc_x', 'acc_y', 'acc_z', 'gyr_x', 'gyr_y', 'gyr_z'],
      rate_hz: 50,
      window: 100,
      mean: [0, 9.81, 0, 0, 0, 0],
      std: [3, 4, 2, 40, 60, 20],
    },
    layers: [
      { type: 'conv1d', name: 'conv', in_channels: 6, out_channels: 16, kernel: 9 },
      { type: 'relu' },
      { type: 'global_avg_pool' },
      { type: 'linear', name: 'out', in_features: 16, out_features: 1 },
    ],
    output: { kind: 'values', names: ['amplitude'], mean: [1], std: [1] },
  };
  const weights = safetensors({
    'conv.weight': [[16, 6, 9], uniform(16 * 6 * 9, 54)],
    'conv.bias': [[16], uniform(16, 54)],
    'out.weight': [[1, 16], uniform(16, 16)],
    'out.bias': [[1], uniform(1, 16)],
  });
  return [
    { name: 'config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(config)) },
    { name: 'model.safetensors', mimeType: 'application/octet-stream', buffer: weights },
  ];
}

test('a regression model from files: takes recorded with typed target values, trained, predicted against true, tried live, exported', { timeout: 900_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/?device=cpu');
  const fail = async () => {
    const error = await page.locator('#status.error:not([hidden])').count();
    if (error) throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  };
  await page.selectOption('#model-select', 'files');
  await page.setInputFiles('#model-files', swayModel());
  await page.waitForSelector('#model-info[data-arch="sway"]', { timeout: 240_000 });
  await page.waitForSelector('#record-motion:not([hidden])');
  assert.match(await page.textContent('#motion-class-label'), /amplitude/);

  // A take's value that is not a number is refused, naming it.
  await page.fill('#motion-class', 'fast');
  await page.click('#motion-record');
  await page.waitForSelector('#status.error:not([hidden])');
  assert.match(await page.textContent('#status'), /amplitude: “fast” is not a number/);

  // Two people, three amplitudes of sway each, 6 s a take.
  for (const person of ['anna', 'ben']) {
    for (const amplitude of [0, 1, 2]) {
      await page.fill('#motion-group', person);
      await page.fill('#motion-class', String(amplitude));
      await play(page, amplitude);
      await page.click('#motion-record');
      await page.waitForFunction(() => Number(document.getElementById('motion-status').dataset.samples ?? 0) >= 300, null, { timeout: 60_000 });
      await page.click('#motion-stop');
      await stop(page);
      await fail();
    }
  }
  await page.waitForSelector('#motion-recordings[data-count="6"]');
  await page.waitForFunction(() => Number(document.getElementById('dataset-summary').dataset.total ?? 0) > 0, null, { timeout: 120_000 });
  await fail();

  await page.$eval('#recipe-json', (e) => {
    const details = e.closest('details');
    if (details) details.open = true;
  });
  await page.fill('#recipe-json', JSON.stringify({ val_fraction: 0.5, head: { epochs: 30, batch_size: 8, lr: 0.01 }, finetune: { epochs: 5, batch_size: 8, lr: 0.001 }, series: { stride_s: 0.5 } }));
  await page.dispatchEvent('#recipe-json', 'change');
  await page.waitForFunction(() => !document.getElementById('train').disabled, null, { timeout: 60_000 });
  await page.click('#train');
  await page.waitForFunction(() => !document.getElementById('try-motion').disabled, null, { timeout: 600_000 });
  await fail();

  // The held-out person's error, before and after, and the predicted-vs-true plot.
  const cells = await page.$$eval('#regression-table tr[data-output="amplitude"] td', (tds) => tds.map((td) => td.textContent));
  const [before, afterRmse] = [Number(cells[1]), Number(cells[2])];
  const points = Number(await page.getAttribute('#regression-plots canvas[data-output="amplitude"]', 'data-points'));
  console.log(`held-out person: amplitude RMSE ${before} before, ${afterRmse} after, ${points} points plotted`);
  assert.ok(points > 0, 'no predicted-vs-true plot');
  assert.ok(afterRmse < before / 2 && afterRmse < 0.4, `RMSE ${before} -> ${afterRmse} (targets 0, 1, 2)`);
  await page.screenshot({ path: join(OUTPUT, 'motion-regression.png'), fullPage: true });

  // Live: a stronger sway reads as a larger amplitude.
  const live = {};
  await play(page, 2);
  await page.click('#try-motion');
  for (const amplitude of [2, 0]) {
    await play(page, amplitude);
    await page.waitForTimeout(4_000);
    live[amplitude] = Number(await page.getAttribute('#prediction', 'data-value'));
  }
  await stop(page);
  await page.click('#try-motion-stop');
  console.log(`live: amplitude 2 read as ${live[2]}, 0 as ${live[0]}`);
  assert.ok(live[2] - live[0] > 1, `live values ${JSON.stringify(live)}`);

  // Export: the values output and the model's own layer names.
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export-zip')]);
  const zip = readFileSync(await download.path());
  const config = JSON.parse(unzip(zip, 'config.json').toString('utf8'));
  assert.equal(config.output.kind, 'values');
  assert.deepEqual(config.output.names, ['amplitude']);
  const weights = unzip(zip, 'model.safetensors');
  const header = JSON.parse(weights.toString('utf8', 8, 8 + Number(weights.readBigUInt64LE(0))));
  assert.deepEqual(header['conv.weight'].shape, [16, 6, 9]);
  assertPrivate({ foreign, consoleLines });
});
