// A GPU lost mid-run: the training worker's WebGPU device is destroyed (device.destroy(), by a
// hook the server puts before worker.js) right after the run's first checkpoint. The run goes
// on from that checkpoint on the CPU backend with a warning, and ends with the weights that a
// CPU run resumed from the same checkpoint ends with, byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, open, assertPrivate, digits } from './browser.mjs';

const DIGITS = digits(3);

// Every device the worker asks for, destroyed once the worker sends its first checkpoint.
const HOOK = `{
  const request = GPUAdapter.prototype.requestDevice;
  const devices = [];
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    devices.push(device);
    return device;
  };
  const post = self.postMessage.bind(self);
  let destroyed = false;
  self.postMessage = (message, transfer) => {
    if (!destroyed && message?.type === 'checkpoint') {
      destroyed = true;
      setTimeout(() => devices.forEach((d) => d.destroy()), 0);
    }
    return post(message, transfer);
  };
}
`;

let ctx;
before(async () => {
  ctx = await start({ prepend: { '/www/worker.js': HOOK } });
});
after(async () => ctx?.stop());

test('a lost WebGPU device: the run goes on from its last checkpoint on the CPU', { timeout: 900_000 }, async () => {
  const { page, ...seen } = await open(ctx, '/blank');
  const out = await page.evaluate(async (items) => {
    const { FineTuner } = await import('/www/tabtune.js');
    await FineTuner.discardRun();
    const recipe = {
      head: { epochs: 1, batch_size: 2 },
      finetune: { epochs: 1, batch_size: 2, unfreeze: { last: 1 }, optimizer: 'sgd', lr: 0.01, backbone_lr: 0.001 },
      val_fraction: 0.34,
      seed: 4,
    };
    const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('tabtune');
    const copy = async (from, to) => {
      for await (const [name, handle] of from.entries()) {
        if (handle.kind === 'directory') await copy(handle, await to.getDirectoryHandle(name, { create: true }));
        else {
          const w = await (await to.getFileHandle(name, { create: true })).createWritable();
          await w.write(await (await handle.getFile()).arrayBuffer());
          await w.close();
        }
      }
    };
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'webgpu' });
    const started = tuner.device.backend;
    await tuner.setDataset({ kind: 'image', items });
    const warnings = [];
    let copied = null;
    const report = await tuner.train(recipe, {
      onProgress: (e) => {
        if (e.kind !== 'warning') return;
        warnings.push(e.message);
        // The checkpoint the run goes on from, kept aside before the run ends and removes it.
        if (/GPU was lost/.test(e.message)) copied ??= root.getDirectoryHandle('run').then(async (run) => copy(run, await root.getDirectoryHandle('run-copy', { create: true })));
      },
    });
    await copied;
    const ours = (await tuner.export()).files['model.safetensors'];
    const ended = tuner.device.backend;
    tuner.terminate();
    // The same checkpoint, resumed by a CPU tuner that never saw a GPU.
    await root.removeEntry('run', { recursive: true }).catch(() => {});
    await copy(await root.getDirectoryHandle('run-copy'), await root.getDirectoryHandle('run', { create: true }));
    await root.removeEntry('run-copy', { recursive: true });
    const cpu = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const theirs = (await cpu.resume()).phases.map((p) => p.losses);
    const reference = (await cpu.export()).files['model.safetensors'];
    cpu.terminate();
    let differ = ours.length === reference.length ? 0 : Infinity;
    for (let i = 0; i < ours.length && differ !== Infinity; i++) differ += ours[i] !== reference[i];
    return { started, ended, warnings, phases: report.phases.map((p) => [p.phase, p.losses]), resumed_after: report.resumed_after, theirs, differ };
  }, DIGITS);
  console.log(JSON.stringify(out));
  assert.equal(out.started, 'webgpu');
  assert.equal(out.ended, 'cpu');
  assert.ok(out.warnings.some((w) => /The GPU was lost .*going on from the checkpoint after the head phase, on the CPU/.test(w)), JSON.stringify(out.warnings));
  assert.equal(out.resumed_after, 'head');
  assert.deepEqual(out.phases.map(([p]) => p), ['head', 'finetune']);
  assert.deepEqual(out.phases.map(([, l]) => l), out.theirs, 'the losses of the CPU run from the same checkpoint');
  assert.equal(out.differ, 0, 'bytes of the weights that differ from the CPU run from the same checkpoint');
  assertPrivate(seen);
});
