// Leaks: about 4 minutes of SwiftShader's emulated GPU on a 2-core machine, in `make test` since
// issue 20 (it was `make test-memory` before).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, open } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

// Issue 16: runs in a row in one tab give their memory back. Five runs of the same recipe on
// WebGPU; after each, the GPU pool (free pages returned) and the wasm heap must be where the
// first run left them: a run that kept tensors or buffers alive would raise both run by run.
test('five runs in a row in one tab end at the first run\'s memory level', { timeout: 1_200_000 }, async () => {
  const { page, consoleLines } = await open(ctx, '/www/examples/text.html?per_class=2');
  const out = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const { datasets } = await FineTuner.bundled();
    const mnist = datasets.find((d) => d.name === 'mnist');
    const items = ['0', '1'].flatMap((c) =>
      mnist.files.filter((f) => f.split('/').at(-2) === c).slice(0, 2).map((f) => ({ label: c, source: '/' + f })));
    const tuner = await FineTuner.create({ model: 'mobilenet_v2' });
    await tuner.setDataset({ kind: 'image', items });
    const before = await tuner.memory();
    const levels = [];
    for (let run = 0; run < 5; run++) {
      const report = await tuner.train({ head: { epochs: 1 }, finetune: { epochs: 1, unfreeze: { last: 1 } }, val_fraction: 0.5 });
      levels.push({ ...(await tuner.memory()), peak: report.phases.map((p) => p.peak_device_bytes) });
    }
    tuner.terminate();
    return { device: tuner.device.backend, before, levels };
  });
  const mib = (b) => (b / 2 ** 20).toFixed(1);
  console.log(`five runs: before ${JSON.stringify(out.before)}; after each run (MiB in use / reserved / wasm): ${out.levels
    .map((l) => `${mib(l.device.in_use_bytes)}/${mib(l.device.reserved_bytes)}/${mib(l.wasm_bytes)}`).join(', ')}`);
  assert.equal(out.device, 'webgpu', consoleLines.join(' | '));
  const [first, ...rest] = out.levels;
  assert.ok(first.device.in_use_bytes > 0 && first.peak.every((p) => p > 0), JSON.stringify(first));
  for (const [i, level] of rest.entries()) {
    const run = i + 2;
    assert.ok(level.device.in_use_bytes <= first.device.in_use_bytes * 1.01, `run ${run} holds ${level.device.in_use_bytes} bytes of tensors, run 1 ${first.device.in_use_bytes}`);
    assert.ok(level.device.reserved_bytes <= first.device.reserved_bytes * 1.05 + 2 ** 20, `run ${run}'s pool holds ${level.device.reserved_bytes} bytes, run 1's ${first.device.reserved_bytes}`);
    assert.ok(level.wasm_bytes <= first.wasm_bytes * 1.05, `run ${run}: wasm heap ${level.wasm_bytes} bytes, run 1 ${first.wasm_bytes}`);
  }
});
