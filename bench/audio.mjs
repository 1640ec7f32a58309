// Audio in the tab (issue 17), through the public API as a page uses it: the speech_embedding
// model on `--per-class` clips of each class of the spoken-commands demo set, on the wasm CPU
// backend and on WebGPU, in a fresh browser each. Prints embeddings per second (the head
// phase's feature cache), the head phase's seconds, and one full fine-tuning epoch's seconds
// per step (batch 32, every convolution training), as JSON lines and a table.
//
//   node bench/audio.mjs [--per-class 8] [--devices cpu,gpu]
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';

const { values: opt } = parseArgs({
  options: {
    'per-class': { type: 'string', default: '8' },
    devices: { type: 'string', default: 'cpu,gpu' },
  },
});

const server = await serve({ port: 0, quiet: true });
const origin = `http://127.0.0.1:${server.address().port}`;
const rows = [];
try {
  for (const device of opt.devices.split(',')) {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--enable-unsafe-webgpu'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${origin}/www/examples/text.html?per_class=1`);
      const out = await page.evaluate(async ({ device, perClass }) => {
        const { FineTuner } = await import('/www/tabtune.js');
        const { datasets } = await FineTuner.bundled();
        const commands = datasets.find((d) => d.name === 'commands');
        const byClass = new Map();
        for (const f of commands.files) {
          const c = f.split('/').at(-2);
          if ((byClass.get(c) ?? []).length < perClass) byClass.set(c, [...(byClass.get(c) ?? []), f]);
        }
        const items = [...byClass].flatMap(([label, files]) => files.map((f) => ({ label, source: `/${f}` })));
        const tuner = await FineTuner.create({ model: 'speech_embedding', device });
        await tuner.setDataset({ kind: 'audio', items });
        let features = null;
        const report = await tuner.train(
          { head: { epochs: 5 }, finetune: { epochs: 1, batch_size: 32 }, val_fraction: 0.25 },
          { onProgress: (e) => e.kind === 'features' && e.done === e.total && (features = e) },
        );
        tuner.terminate();
        const [head, full] = report.phases;
        return {
          device: tuner.device.backend,
          adapter: tuner.device.adapter?.architecture ?? tuner.device.adapter?.description ?? '',
          clips: items.length,
          embeddings_per_s: features?.throughput,
          head_s: head.seconds,
          finetune_steps: full.losses.length,
          finetune_s_per_step: full.seconds / full.losses.length,
          finetune_clips_per_s: full.throughput,
          micro_batch: full.micro_batch ?? null,
        };
      }, { device, perClass: Number(opt['per-class']) });
      console.log(JSON.stringify(out));
      rows.push(out);
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
console.log('\n| device | clips | embeddings/s | head phase s | fine-tuning s/step (batch 32) |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(`| ${r.device} ${r.adapter} | ${r.clips} | ${r.embeddings_per_s?.toFixed(1)} | ${r.head_s.toFixed(1)} | ${r.finetune_s_per_step.toFixed(2)} (${r.finetune_steps} steps) |`);
}
