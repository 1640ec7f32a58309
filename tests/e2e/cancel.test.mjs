// Cancelled in the page (an AbortSignal, as the page's Stop button sends) while the features are
// computed, during the fine-tuning phase, and during an export: each rejects with "cancelled",
// and the tuner keeps its model, its dataset and the model it trained before, whose export is
// the same byte for byte. Through the API, wasm on the CPU backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, open, assertPrivate, digits } from './browser.mjs';

const DIGITS = digits(4);

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('cancel during features, fine-tuning and export: the tuner is usable after each', { timeout: 600_000 }, async () => {
  const { page, ...seen } = await open(ctx, '/blank');
  const out = await page.evaluate(async (items) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    await tuner.setDataset({ kind: 'image', items });
    const recipe = {
      head: { epochs: 1, batch_size: 2 },
      finetune: { epochs: 2, batch_size: 2, unfreeze: { last: 1 }, optimizer: 'sgd', lr: 0.01, backbone_lr: 0.001 },
      val_fraction: 0.25,
      seed: 9,
    };
    await tuner.train({ ...recipe, finetune: null });
    const bytes = async () => (await tuner.export()).files['model.safetensors'];
    const before = await bytes();
    const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
    const out = {};
    for (const [when, at] of [['features', (e) => e.kind === 'features'], ['fine-tuning', (e) => e.kind === 'step' && e.phase === 'finetune' && e.epoch === 2]]) {
      const stop = new AbortController();
      const error = await tuner.train(recipe, { signal: stop.signal, onProgress: (e) => at(e) && stop.abort() }).then(() => null, (err) => String(err?.message ?? err));
      out[when] = { error, kept: same(await bytes(), before), summary: (await tuner.checkRecipe({ head: { epochs: 1 } })) !== null };
    }
    const stop = new AbortController();
    const exporting = tuner.export({ signal: stop.signal }).then(() => null, (err) => String(err?.message ?? err));
    stop.abort();
    out.export = { error: await exporting, kept: same(await bytes(), before) };
    // And a whole run after all that.
    const report = await tuner.train(recipe);
    out.after = report.phases.map((p) => [p.phase, p.losses.length]);
    await FineTuner.discardRun();
    tuner.terminate();
    return out;
  }, DIGITS);
  console.log(JSON.stringify(out));
  for (const when of ['features', 'fine-tuning', 'export']) {
    assert.equal(out[when].error, 'cancelled', `${when}: ${out[when].error}`);
    assert.ok(out[when].kept, `${when}: the trained model changed`);
  }
  assert.deepEqual(out.after.map(([p]) => p), ['head', 'finetune']);
  assertPrivate(seen);
});
