// Where a run and a saved model live, when storage misbehaves: a full OPFS quota (simulated:
// every write of the origin's private file system rejects with QuotaExceededError) leaves the
// run going with checkpoints off, said once; the IndexedDB fallback (forced: no OPFS) saves,
// lists, reloads and resumes on its own; a saved model damaged in storage is refused by name
// and the others still load. Through the API, wasm on the CPU backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, open, assertPrivate, digits } from './browser.mjs';

const DIGITS = digits(3);
// Two fine-tuning epochs of the last block: a checkpoint after the head and after epoch 1.
const RECIPE = {
  head: { epochs: 1, batch_size: 2 },
  finetune: { epochs: 2, batch_size: 2, unfreeze: { last: 1 }, optimizer: 'sgd', lr: 0.01, backbone_lr: 0.001 },
  val_fraction: 0.34,
  seed: 5,
};

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

/** A fresh page on the served origin (its own browser context: its own storage), with `init`
 * run before any script. */
async function page(init) {
  const { page: p, ...seen } = await open(ctx, '/blank', { init, fresh: true });
  return { p, seen, close: () => p.context().close() };
}

test('a full storage quota: the run goes on with checkpoints off, said once', { timeout: 600_000 }, async () => {
  const { p, seen, close } = await page(() => {
    FileSystemWritableFileStream.prototype.write = function () {
      return Promise.reject(new DOMException('the quota is used up (simulated)', 'QuotaExceededError'));
    };
  });
  const out = await p.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    const checkpoints = [];
    const report = await tuner.train(recipe, { onProgress: (e) => e.kind === 'checkpoint' && checkpoints.push(e) });
    const pending = await FineTuner.pendingRun();
    tuner.terminate();
    return { checkpoints, phases: report.phases.map((ph) => [ph.phase, ph.losses.length]), pending };
  }, { items: DIGITS, recipe: RECIPE });
  await close();
  console.log(`quota: ${JSON.stringify(out)}`);
  assert.equal(out.checkpoints.length, 1, 'said once, then no more writes tried');
  assert.equal(out.checkpoints[0].off, true);
  assert.match(out.checkpoints[0].error, /storage for this page is full.*checkpoints are off for this run/);
  assert.deepEqual(out.phases.map(([name]) => name), ['head', 'finetune']);
  assert.ok(out.phases.every(([, steps]) => steps > 0), 'both phases trained');
  assert.equal(out.pending, null, 'nothing half-written is left to resume');
  assertPrivate(seen);
});

test('IndexedDB on its own: save, list, reload, and a run that resumes', { timeout: 600_000 }, async () => {
  const { p, seen, close } = await page(() => {
    delete StorageManager.prototype.getDirectory;
  });
  const items = DIGITS;
  const first = await p.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    const report = await tuner.train({ ...recipe, finetune: null });
    await tuner.save('in-idb');
    const ours = (await tuner.export()).files['model.safetensors'];
    tuner.terminate();
    const saved = await FineTuner.saved();
    const again = await FineTuner.create({ model: { saved: 'in-idb' }, device: 'cpu' });
    const theirs = (await again.export()).files['model.safetensors'];
    again.terminate();
    const same = ours.length === theirs.length && ours.every((b, i) => b === theirs[i]);
    return { saved, same, accuracy: report.metrics?.accuracy };
  }, { items, recipe: RECIPE });
  assert.deepEqual(first.saved.map((m) => [m.name, m.store]), [['in-idb', 'indexeddb']]);
  assert.ok(first.same, 'the reloaded model is the saved one, byte for byte');
  // A run stopped after its epoch-1 checkpoint (the tab reloaded), then resumed from IndexedDB.
  const reloaded = p.waitForEvent('load');
  p.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    await tuner.train(recipe, { onProgress: (e) => e.kind === 'checkpoint' && e.epoch === 1 && !e.error && location.reload() });
  }, { items, recipe: RECIPE }).catch(() => {});
  await reloaded;
  const resumed = await p.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const pending = await FineTuner.pendingRun();
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const report = await tuner.resume();
    tuner.terminate();
    return { pending, resumed_after: report.resumed_after, phases: report.phases.map((ph) => ph.phase) };
  });
  await close();
  console.log(`indexeddb: ${JSON.stringify(resumed)}`);
  assert.equal(resumed.pending?.epoch, 1);
  assert.equal(resumed.resumed_after, 'finetune epoch 1');
  assert.deepEqual(resumed.phases, ['head', 'finetune']);
  assertPrivate(seen);
});

test('a saved model damaged in storage is refused by name; the others still load', { timeout: 600_000 }, async () => {
  const { p, seen, close } = await page();
  const out = await p.evaluate(async ({ items, recipe }) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    await tuner.train({ ...recipe, finetune: null });
    for (const name of ['kept', 'damaged', 'unlisted']) await tuner.save(name);
    tuner.terminate();
    // Damage two of them in the origin's private file system: one's weights, one's description.
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tabtune');
    const models = await root.getDirectoryHandle('models');
    const overwrite = async (name, file, text) => {
      const w = await (await (await models.getDirectoryHandle(name)).getFileHandle(file)).createWritable();
      await w.write(new TextEncoder().encode(text));
      await w.close();
    };
    await overwrite('damaged', 'model.safetensors', 'these bytes are no safetensors file');
    await overwrite('unlisted', 'meta.json', '{"name": "unlisted", "kind":');
    const listed = (await FineTuner.saved()).map((m) => ({ name: m.name, error: m.error ?? null })).sort((a, b) => a.name.localeCompare(b.name));
    const load = (name) => FineTuner.create({ model: { saved: name }, device: 'cpu' }).then((t) => {
      t.terminate();
      return 'loaded';
    }, (err) => String(err?.message ?? err));
    return { listed, damaged: await load('damaged'), kept: await load('kept') };
  }, { items: DIGITS, recipe: RECIPE });
  await close();
  console.log(`damaged: ${JSON.stringify(out)}`);
  assert.match(out.damaged, /damaged\/model\.safetensors/);
  assert.equal(out.kept, 'loaded');
  assert.deepEqual(out.listed.map((m) => m.name), ['damaged', 'kept', 'unlisted']);
  assert.match(out.listed.find((m) => m.name === 'unlisted').error, /unreadable/);
  assertPrivate(seen);
});
