// Micro-batches side by side (BENCHMARKS.md "Micro-batches"): one `tabtune bench` worker per
// cell, the whole batch at once (`micro_batch` 0, as before issue 16; an allocation failure
// still halves it and retries) against the core's own choice, on one device.
//   node bench/micro_batch.mjs [--device cpu|gpu] [--reps 1] [--workloads image_step,text_step]
// Needs `cargo build --release --bin tabtune`. Prints a Markdown table.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    device: { type: 'string', default: 'gpu' },
    reps: { type: 'string', default: '1' },
    workloads: { type: 'string', default: 'image_step,text_step' },
    batch: { type: 'string', default: '32' },
  },
});

function worker(device) {
  const child = spawn('target/release/tabtune', ['bench', '--device', device], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  const ask = (command) => new Promise((resolve) => {
    waiting.push(resolve);
    child.stdin.write(`${JSON.stringify(command)}\n`);
  });
  return { ask, quit: () => { child.stdin.write('{"op":"quit"}\n'); child.stdin.end(); } };
}

const mib = (b) => (b == null ? '-' : `${Math.round(b / 2 ** 20).toLocaleString('en')} MiB`);
const rows = [];
for (const workload of opt.workloads.split(',')) {
  for (const micro of [0, null]) {
    const w = worker(opt.device);
    const info = await w.ask({ op: 'info' });
    const setup = { op: 'setup', workload, batch: Number(opt.batch), tokens: 128 };
    if (micro !== null) setup.micro_batch = micro;
    const started = await w.ask(setup);
    const reps = [];
    if (started.ok) for (let i = 0; i < Number(opt.reps); i++) reps.push(await w.ask({ op: 'rep' }));
    w.quit();
    const good = reps.filter((r) => r.ok);
    const seconds = good.map((r) => r.seconds).sort((a, b) => a - b);
    rows.push({
      workload,
      micro: micro === 0 ? 'whole batch (0)' : 'default',
      adapter: info.device?.adapter?.description ?? info.device?.backend,
      warmup: started.ok ? started.warmup_s.toFixed(2) : `failed: ${started.error}`,
      median: seconds.length ? seconds[Math.floor(seconds.length / 2)].toFixed(2) : reps[0]?.error ?? '-',
      pool: mib(good.at(-1)?.device_bytes_reserved),
      n: good.length,
    });
    console.error(JSON.stringify(rows.at(-1)));
  }
}
console.log(`device ${opt.device}, batch ${opt.batch}, ${opt.reps} repetition(s) after a warm-up\n`);
console.log('| workload | micro-batch | adapter | warm-up step (s) | step (s, median) | pool after | n |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.workload} | ${r.micro} | ${r.adapter} | ${r.warmup} | ${r.median} | ${r.pool} | ${r.n} |`);
