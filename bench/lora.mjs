// LoRA against full fine-tuning in the tab (issue 21): the same recipe and seed on the same
// examples, phase 2 training every weight or low-rank adapters, through the public API as a page
// uses it, on the wasm CPU backend and on WebGPU, each device in a fresh Chromium. Per device,
// model and mode: the parameters phase 2 trains (FineTuner.loraPlan; the full run trains every
// one), AdamW's moments for them (two float32 per parameter), the GPU pool's peak during the
// phase, and its seconds per step (the median of its steps: a batch over the step event's
// throughput). JSON lines, then a table (bench/results/lora-tab.md).
//
//   node bench/lora.mjs [--devices cpu,gpu] [--models text,image] [--batch 8] [--rank 8]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';
import { digits } from '../tests/e2e/browser.mjs';

const { values: opt } = parseArgs({
  options: {
    devices: { type: 'string', default: 'cpu,gpu' },
    models: { type: 'string', default: 'text,image' },
    batch: { type: 'string', default: '8' },
    rank: { type: 'string', default: '8' },
  },
});
const batch = Number(opt.batch);
// Two steps of phase 2: 2 batches of training examples, none held out.
const MODELS = {
  text: { model: 'all-MiniLM-L6-v2', dataset: { kind: 'text', data: '/assets/datasets/rotten_tomatoes.csv', name: 'rotten_tomatoes.csv', columns: { per_class: batch } }, text: { max_length: 64 } },
  image: { model: 'mobilenet_v2', images: digits(batch) },
};

const server = await serve({ port: 0, quiet: true });
const origin = `http://127.0.0.1:${server.address().port}`;
const results = [];
try {
  for (const device of opt.devices.split(',')) {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--enable-unsafe-webgpu'],
    });
    try {
      for (const kind of opt.models.split(',')) {
        for (const mode of ['full', 'lora']) {
          const page = await browser.newPage();
          page.on('console', (m) => m.type() === 'error' && console.error(`[page] ${m.text()}`));
          await page.goto(`${origin}/www/examples/text.html`);
          const spec = MODELS[kind];
          const out = await page.evaluate(async ({ device, spec, mode, batch, rank }) => {
            const { FineTuner } = await import('/www/tabtune.js');
            const tuner = await FineTuner.create({ model: spec.model, device });
            if (spec.images) {
              await tuner.setDataset({ kind: 'image', items: spec.images });
            } else {
              await tuner.setDataset(spec.dataset);
            }
            const phase = { epochs: 1, batch_size: batch, warmup_fraction: 0 };
            const lora = { r: rank, alpha: rank };
            const recipe = {
              head: { epochs: 1, batch_size: batch },
              finetune: { ...phase, lora: mode === 'lora' ? lora : null },
              val_fraction: 0,
              seed: 7,
              ...(spec.text ? { text: spec.text } : {}),
            };
            const plan = await tuner.loraPlan({ ...recipe, finetune: { ...phase, lora } });
            const steps = [];
            const report = await tuner.train(recipe, {
              onProgress: (e) => { if (e.kind === 'step' && e.phase === 'finetune') steps.push(batch / e.throughput); },
            });
            tuner.terminate();
            const p = report.phases.at(-1);
            steps.sort((a, b) => a - b);
            return {
              device: tuner.device.backend,
              adapter: tuner.device.adapter?.description || tuner.device.adapter?.architecture || '',
              trained: mode === 'lora' ? plan.adapter_params + plan.head_params : plan.model_params,
              model_params: plan.model_params,
              step_s: steps[Math.floor(steps.length / 2)],
              steps: steps.length,
              pool_peak_bytes: p.peak_device_bytes ?? null,
              micro_batch: p.micro_batch,
              loss: p.losses.at(-1),
            };
          }, { device, spec, mode, batch, rank: Number(opt.rank) });
          await page.close();
          const row = { model: MODELS[kind].model, mode, ...out };
          console.log(JSON.stringify(row));
          results.push(row);
        }
      }
    } finally {
      await browser.close();
    }
  }
} finally {
  server.close();
}
const mib = (b) => (b == null ? '–' : `${(b / 2 ** 20).toFixed(b < 2 ** 24 ? 2 : 0)} MiB`);
const lines = [
  `Phase 2 in the tab, batch ${batch}, LoRA rank ${opt.rank} (alpha ${opt.rank}); the same recipe, seed and examples\n`,
  '| device | model | phase 2 trains | parameters | AdamW moments | GPU pool peak | s/step |',
  '| --- | --- | --- | ---: | ---: | ---: | ---: |',
];
for (const r of results) {
  const share = `${r.trained.toLocaleString('en')} (${((100 * r.trained) / r.model_params).toFixed(2)}%)`;
  lines.push(`| ${r.device} ${r.adapter} | ${r.model} | ${r.mode === 'lora' ? 'adapters + head' : 'every weight'} | ${share} | ${mib(8 * r.trained)} | ${mib(r.pool_peak_bytes)} | ${r.step_s?.toFixed(2)} |`);
}
console.log(`\n${lines.join('\n')}`);
writeFileSync('bench/results/lora-tab.md', `${lines.join('\n')}\n`);
