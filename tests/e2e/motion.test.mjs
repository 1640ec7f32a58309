// Sensors in the page (issue 18): a scripted DeviceMotionEvent source plays "walking" (a 2 Hz
// sway of the accelerometer and gyroscope around gravity) and "still" (gravity and sensor
// noise) into the page, as a phone's motion sensors would. The page records each class for
// two people, fine-tunes the activity model (humanactivity's Conv1D: new head for the two
// classes, then every layer), shows the confusion matrix of the held-out person, follows the
// live sensors in the try, exports the model, saves it, and after a reload the saved model
// still tells walking from still.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { join } from 'node:path';
import { start, open, OUTPUT } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

/** In the page: play `kind` into `devicemotion` events at 50 Hz until `stop()`. */
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
      const w = kind === 'walking' ? 1 : 0;
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

/** The file `name` of a zip archive (stored or deflated). */
function unzip(zip, name) {
  for (let at = 0; at + 30 < zip.length; ) {
    if (zip.readUInt32LE(at) !== 0x04034b50) break;
    const method = zip.readUInt16LE(at + 8);
    const size = zip.readUInt32LE(at + 18);
    const nameLen = zip.readUInt16LE(at + 26);
    const extra = zip.readUInt16LE(at + 28);
    const file = zip.toString('utf8', at + 30, at + 30 + nameLen);
    const data = zip.subarray(at + 30 + nameLen + extra, at + 30 + nameLen + extra + size);
    if (file === name) return method === 8 ? inflateRawSync(data) : data;
    at += 30 + nameLen + extra + size;
  }
  throw new Error(`${name} is not in the zip`);
}

const stop = (page) => page.evaluate(() => clearInterval(window.__motionTimer));

test('the page records the motion sensors for two classes, fine-tunes, shows the results, follows the live sensors, exports and reloads', { timeout: 1_200_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/');
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
  assert.deepEqual(foreign, [], 'requests left the page origin');
});
