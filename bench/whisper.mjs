// Whisper tiny.en training in the tab (issue 19): one optimiser step at batch 8 of each phase
// (the decoder on the frozen encoder's cached states, then every layer), through the public API
// as a page uses it, on the wasm CPU backend and on WebGPU, each in a fresh Chromium. Prints,
// per device and phase: the step's seconds (the first step of the phase: a batch over the
// step event's throughput), the micro-batch the core chose for the recipe's memory_mib, the
// GPU pool's peak, the module's linear memory after the run (a wasm memory never shrinks: its
// peak) and Chromium's PSS (every process of the browser, sampled every 250 ms) at its peak
// during the phase. JSON lines, then a table.
//
//   node bench/whisper.mjs [--devices cpu,gpu] [--batch 8] [--phases decoder,all]
//     [--memory-mib 1536]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';
import { treePss } from './proc.mjs';

const { values: opt } = parseArgs({
  options: {
    devices: { type: 'string', default: 'cpu,gpu' },
    batch: { type: 'string', default: '8' },
    phases: { type: 'string', default: 'decoder,all' },
    'memory-mib': { type: 'string', default: '1536' },
  },
});
const batch = Number(opt.batch);
const phases = opt.phases.split(',');
const SET = 'assets/datasets/medical_speech/train';
// The first `batch` training clips of the demo set, with their rows of its metadata.csv.
const rows = readFileSync(join(SET, 'metadata.csv'), 'utf8').trim().split('\n').slice(1, 1 + batch);
if (rows.length < batch) throw new Error(`${SET} has ${rows.length} clips, fewer than --batch ${batch}: run make assets`);

const server = await serve({ port: 0, quiet: true });
const origin = `http://127.0.0.1:${server.address().port}`;
const results = [];
try {
  for (const device of opt.devices.split(',')) {
    const browserServer = await chromium.launchServer({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--enable-unsafe-webgpu'],
    });
    const pid = browserServer.process().pid;
    const browser = await chromium.connect(browserServer.wsEndpoint());
    // Chromium's PSS, peak per phase (the phase the last progress event named).
    let phase = 'load';
    const pss = {};
    const timer = setInterval(() => { pss[phase] = Math.max(pss[phase] ?? 0, treePss(pid)); }, 250);
    try {
      const page = await browser.newPage();
      page.on('console', (m) => m.type() === 'error' && console.error(`[page] ${m.text()}`));
      await page.exposeFunction('benchPhase', (name) => { phase = name; });
      await page.goto(`${origin}/www/examples/text.html`);
      const out = await page.evaluate(async ({ device, rows, set, batch, phases, memoryMib }) => {
        const { FineTuner } = await import('/www/tabtune.js');
        const t0 = performance.now();
        const tuner = await FineTuner.create({ model: 'whisper_tiny_en', device });
        const loadS = (performance.now() - t0) / 1000;
        const files = [{ name: 'metadata.csv', data: new Blob([['file_name,transcription', ...rows].join('\n') + '\n']) }];
        for (const r of rows) {
          const name = r.split(',')[0];
          files.push({ name, data: `/${set}/${name}` });
        }
        await tuner.setDataset({ kind: 'transcription', files });
        const unit = { epochs: 1, batch_size: batch, warmup_fraction: 0 };
        const recipe = {
          head: phases.includes('decoder') ? unit : { ...unit, epochs: 0 },
          finetune: phases.includes('all') ? unit : null,
          val_fraction: 0,
          memory_mib: memoryMib,
        };
        const steps = {};
        const report = await tuner.train(recipe, {
          onProgress: (e) => {
            if (e.kind === 'features') window.benchPhase('encoding');
            if (e.kind === 'step') {
              steps[e.phase] = batch / e.throughput;
              window.benchPhase(`after ${e.phase}`);
            }
          },
        });
        const memory = await tuner.memory();
        tuner.terminate();
        return {
          device: tuner.device.backend,
          adapter: tuner.device.adapter?.description || tuner.device.adapter?.architecture || '',
          load_s: loadS,
          wasm_bytes: memory.wasm_bytes,
          phases: report.phases.map((p) => ({
            phase: p.phase,
            step_s: steps[p.phase],
            micro_batch: p.micro_batch,
            pool_peak_bytes: p.peak_device_bytes ?? null,
            loss: p.losses[0],
          })),
        };
      }, { device, rows, set: SET, batch, phases, memoryMib: Number(opt['memory-mib']) });
      // A phase's PSS: while the label was the event before its step's (loading and encoding
      // for the first phase; the previous phase's step, its epoch's end and the phase's setup
      // for the next).
      const order = ['load', 'encoding', ...out.phases.map((p) => `after ${p.phase}`)];
      for (const p of out.phases) {
        const k = order.indexOf(`after ${p.phase}`);
        p.pss_peak_bytes = Math.max(...order.slice(k === 2 ? 0 : k - 1, k).map((l) => pss[l] ?? 0));
      }
      out.pss_peak_bytes = Math.max(...Object.values(pss));
      console.log(JSON.stringify(out));
      results.push(out);
    } finally {
      clearInterval(timer);
      await browser.close().catch(() => {});
      await browserServer.close();
    }
  }
} finally {
  server.close();
}
const mib = (b) => (b == null ? '–' : `${Math.round(b / 2 ** 20).toLocaleString('en')} MiB`);
console.log(`\nWhisper tiny.en, one step at batch ${batch} (memory_mib ${opt['memory-mib']})\n`);
console.log('| device | phase | s/step | micro-batch | GPU pool peak | wasm memory (run) | Chromium PSS peak (phase) |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) {
  for (const p of r.phases) {
    console.log(`| ${r.device} ${r.adapter} | ${p.phase} | ${p.step_s?.toFixed(1)} | ${p.micro_batch} | ${mib(p.pool_peak_bytes)} | ${mib(r.wasm_bytes)} | ${mib(p.pss_peak_bytes)} |`);
  }
}
