// The benchmark (`make bench`): every contender on this machine in one run — tabtune in
// headless Chromium (WebGPU and its wasm CPU fallback), tabtune native (CPU backend, and wgpu
// over Mesa's lavapipe), TF.js in the same Chromium (WebGPU, WASM) and PyTorch on the CPU —
// on the workloads of issue 6. Per workload, each contender builds it and runs one warm-up,
// then the repetitions alternate between contenders (the order rotating each round), so a
// slow minute of the machine falls on all of them. Prints the table (median, min–max, ratio
// against tabtune), writes the raw figures to bench/results/<date>.json and the table into
// BENCHMARKS.md between its bench markers.
//
//   node bench/run.mjs [--reps 3] [--cap 300] [--only 1,2,6] [--contenders a,b] [--sizes 1000,2000]
//   node bench/run.mjs --before /bench/before/ ...   (another core build beside this one, below)
//   node bench/run.mjs --whole-batch --only 2,5 ...  (training steps without micro-batches too)
//   node bench/run.mjs --render bench/results/<run>.json   (the table of a saved run)
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem, tmpdir, release } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { serve } from '../scripts/serve.mjs';
import { status, treePss, sampling } from './proc.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' }, // measured repetitions per cell, after a warm-up
    cap: { type: 'string', default: '120' }, // a cell stops repeating past this many measured seconds
    'max-estimate': { type: 'string', default: '600' }, // skip a cell whose repetition would take longer
    timeout: { type: 'string', default: '1800' }, // seconds one setup or repetition may take
    only: { type: 'string' }, // workload numbers
    contenders: { type: 'string' }, // contender names
    sizes: { type: 'string', default: '1000,2000,5000,10000' }, // workload 7
    'browser-sizes': { type: 'string', default: '1000,2000,5000' }, // workload 7 in the tab
    'no-update': { type: 'boolean', default: false }, // leave BENCHMARKS.md alone
    before: { type: 'string' }, // another core build's URL path (see contenders())
    'whole-batch': { type: 'boolean', default: false }, // rows with micro-batches off (see contenders())
    pause: { type: 'string', default: '0' }, // workload 6: seconds between the model and the data, as a user picking files
    render: { type: 'string' }, // print (and write into BENCHMARKS.md) the table of a results JSON
  },
});
const REPS = Number(opt.reps);
const CAP_S = Number(opt.cap);
const TIMEOUT_MS = Number(opt.timeout) * 1000;
const MAX_ESTIMATE_S = Number(opt['max-estimate']);
const HEAD_IMAGES = 1000;
// A repetition's expected seconds from an earlier workload's median on the same contender:
// a training step costs about 3 forward passes; the head phase is dominated by its features.
const ESTIMATE = {
  image_step: ['image_features', 3],
  head_phase: ['image_features', HEAD_IMAGES / 32],
  text_step: ['text_features', 3],
};
const EPOCHS = 10;

// ---------------------------------------------------------------- workloads
const WORKLOADS = [
  { id: 1, key: 'image_features', title: 'MobileNetV2 feature extraction, batch 32, 224x224', rate: 'images/s', spec: { batch: 32 } },
  { id: 2, key: 'image_step', title: 'MobileNetV2 full fine-tuning step, batch 32 (forward, backward, AdamW)', rate: 'images/s', perStep: true, spec: { batch: 32 } },
  { id: 3, key: 'head_phase', title: `Head-only phase end to end, ${HEAD_IMAGES.toLocaleString('en')} images (decode, features once, ${EPOCHS} head epochs)`, spec: {} },
  { id: 4, key: 'text_features', title: 'all-MiniLM-L6-v2 feature extraction, batch 32, 128 tokens', rate: 'sentences/s', spec: { batch: 32, tokens: 128 } },
  { id: 5, key: 'text_step', title: 'all-MiniLM-L6-v2 full fine-tuning step, batch 32, 128 tokens', rate: 'sentences/s', perStep: true, spec: { batch: 32, tokens: 128 } },
  { id: 6, key: 'first_step', title: 'Page load to the first finished training step (20 images, head-only recipe)' },
  { id: 7, key: 'scaling', title: 'Head-only phase end to end by dataset size: time and peak memory' },
];

// ---------------------------------------------------------------- small helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
// An error's first line, and its innermost cause where it has a chain (burn's compute errors
// start with a generic line; the cause names the problem, e.g. a buffer too large).
const firstLine = (err) => {
  const lines = String(err?.message ?? err).split('\n').map((l) => l.trim()).filter(Boolean);
  const cause = lines.lastIndexOf('Caused by:');
  const root = cause >= 0 ? lines[cause + 1] : undefined;
  return root && root !== lines[0] ? `${lines[0]} … ${root}` : lines[0];
};
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); }),
  ]);
}

/** Image files of a bench/data folder (made by bench/setup.sh) and their labels. */
function dataset(n) {
  const dir = join(ROOT, 'bench', 'data', `n${n}`);
  if (!existsSync(join(dir, '.done'))) throw new Error(`${dir} is missing: run bench/setup.sh`);
  // Round-robin over the classes, so any prefix (a contender's warm-up takes the first 64)
  // has every class.
  const byClass = readdirSync(dir).filter((d) => /^\d$/.test(d)).sort()
    .map((c) => readdirSync(join(dir, c)).sort().map((f) => [join(dir, c, f), Number(c)]));
  const order = [];
  for (let i = 0; order.length < byClass.flat().length; i++) for (const list of byClass) if (i < list.length) order.push(list[i]);
  const files = order.map(([f]) => f);
  const labels = order.map(([, l]) => l);
  return { dir, files, labels, urls: files.map((f) => '/' + f.slice(ROOT.length + 1)) };
}

// ---------------------------------------------------------------- line workers
/** A process answering one JSON line per JSON command line (tabtune bench, torch_bench.py). */
class LineWorker {
  constructor(cmd, args, env = {}) {
    this.proc = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-4000); });
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
    this.exited = new Promise((r) => this.proc.on('exit', (code, signal) => r(`exited (${signal ?? code})`)));
  }
  async call(command, ms = TIMEOUT_MS) {
    this.proc.stdin.write(JSON.stringify(command) + '\n');
    const next = this.lines.next().then(({ value, done }) => {
      if (done) throw new Error(`the worker ended: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return JSON.parse(value);
    });
    const answer = await withTimeout(Promise.race([next, this.exited.then((why) => { throw new Error(`the worker ${why}: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`); })]), ms, command.op);
    if (!answer.ok) throw new Error(answer.error);
    return answer;
  }
  stop() { this.proc.kill('SIGKILL'); }
}

/** One CLI fine-tuning run (head only) on a bench/data folder: seconds and peak RSS. */
async function cliHeadPhase(device, n) {
  const { dir } = dataset(n);
  const out = mkdtempSync(join(tmpdir(), 'tabtune-bench-'));
  const args = ['finetune', '--model', 'assets/models/mobilenet_v2', '--data', dir, '--no-finetune',
    '--epochs', String(EPOCHS), '--device', device, '--out', out];
  const t0 = performance.now();
  const proc = spawn(join(ROOT, 'target/release/tabtune'), args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output = (output + d).slice(-4000); });
  proc.stderr.on('data', (d) => { output = (output + d).slice(-4000); });
  let peak = 0;
  const timer = setInterval(() => { peak = Math.max(peak, status(proc.pid, 'VmHWM') ?? 0); }, 100);
  const code = await withTimeout(new Promise((r) => proc.on('exit', r)), TIMEOUT_MS, 'tabtune finetune').finally(() => clearInterval(timer));
  const seconds = (performance.now() - t0) / 1000;
  const report = existsSync(join(out, 'report.json')) ? JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).report : null;
  rmSync(out, { recursive: true, force: true });
  if (code !== 0) {
    // The CLI's error starts at its "tabtune: " line; firstLine adds the innermost cause.
    const at = output.lastIndexOf('tabtune: ');
    throw new Error(`tabtune finetune exited ${code}: ${at >= 0 ? firstLine(output.slice(at + 9)) : output.trim().split('\n').slice(-2).join(' | ')}`);
  }
  const head = report?.phases?.find((p) => p.phase === 'head');
  return { seconds, items: n, peak_rss_bytes: peak, features_s: report?.features?.[1] ?? null, val_accuracy: head?.val_accuracy?.at(-1) ?? null };
}

/** tabtune native: the `tabtune bench` worker for the micro workloads, the CLI for the rest. */
function nativeContender(name, label, device, micro) {
  let worker = null;
  let head = null; // n for head_phase
  return {
    name, label, kind: 'native',
    supports: [1, 2, 3, 4, 5, 7],
    async start() {
      worker = new LineWorker(join(ROOT, 'target/release/tabtune'), ['bench', '--device', device]);
      const info = await worker.call({ op: 'info' }, 120_000);
      if (device === 'gpu' && info.device.backend !== 'wgpu') throw new Error(`no native GPU adapter: ${JSON.stringify(info.device)}`);
      return info;
    },
    async setup(w, spec) {
      if (w.key === 'head_phase') {
        head = spec.n;
        const warm = await cliHeadPhase(device, 64);
        return { setup_s: 0, warmup_s: warm.seconds, note: 'each repetition is a new CLI process (model load included)' };
      }
      return worker.call({ op: 'setup', workload: w.key, batch: spec.batch, tokens: spec.tokens, seed: spec.seed, micro_batch: micro });
    },
    async rep() { return head ? cliHeadPhase(device, head) : worker.call({ op: 'rep' }); },
    async scale(n) { return cliHeadPhase(device, n); },
    done() { head = null; },
    stop() { worker?.stop(); },
  };
}

function torchContender() {
  const python = join(ROOT, 'bench/.venv/bin/python');
  let worker = null;
  return {
    name: 'pytorch-cpu', label: 'PyTorch, CPU', kind: 'native',
    supports: [1, 2, 3, 4, 5],
    async start() {
      if (!existsSync(python)) throw new Error('bench/.venv has no Python: run bench/setup.sh');
      worker = new LineWorker(python, [join(ROOT, 'bench/torch_bench.py')]);
      return worker.call({ op: 'info' }, 300_000);
    },
    setup(w, spec) { return worker.call({ op: 'setup', workload: w.key, ...spec, files: spec.files, val_fraction: spec.valFraction }); },
    rep() { return worker.call({ op: 'rep' }); },
    done() {},
    stop() { worker?.stop(); },
  };
}

// ---------------------------------------------------------------- browser pages
let server = null;
let origin = null;
async function launch() {
  const browserServer = await chromium.launchServer({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu', '--enable-precise-memory-info'],
  });
  const browser = await chromium.connect(browserServer.wsEndpoint());
  return { browser, pid: browserServer.process().pid, async close() { await browser.close().catch(() => {}); await browserServer.close(); } };
}

/** A contender living in a page: `api` is the page's global (ttbench or tfbench). */
function pageContender(name, label, path, api, backend, supports, { micro, workerUrl } = {}) {
  let b = null;
  let page = null;
  const call = (fn, arg) => withTimeout(page.evaluate(([a, f, x]) => window[a][f](x), [api, fn, arg]), TIMEOUT_MS, `${name} ${fn}`);
  return {
    name, label, kind: 'browser', supports,
    async start() {
      b = await launch();
      page = await b.browser.newPage();
      const lines = [];
      page.on('console', (m) => { if (m.type() === 'error') lines.push(m.text()); });
      page.on('pageerror', (e) => lines.push(e.message));
      await page.goto(`${origin}${path}`);
      await page.waitForFunction((a) => window[a] !== undefined, api, { timeout: 60_000 });
      const info = await call('init', backend);
      return { ...info, chromium: b.browser.version() };
    },
    async setup(w, spec) { return call('setup', { workload: w.key, ...spec, micro_batch: micro }); },
    async rep() {
      const [r, pss] = await sampling(() => treePss(b.pid), () => call('rep'));
      return { ...r, browser_pss_peak_bytes: pss };
    },
    async firstStep(files, labels) {
      // A fresh page of a fresh context: nothing cached, the clock starts at navigation.
      const ctx = await b.browser.newContext();
      try {
        const p = await ctx.newPage();
        await p.goto(`${origin}${path}`);
        await p.waitForFunction((a) => window[a] !== undefined, api);
        const options = { workerUrl, pauseS: Number(opt.pause) };
        return await withTimeout(p.evaluate(([a, f, l, d, o]) => window[a].firstStep(f, l, d, o), [api, files, labels, backend, options]), TIMEOUT_MS, `${name} firstStep`);
      } finally { await ctx.close(); }
    },
    done() {},
    async stop() { await b?.close(); b = null; },
  };
}

// ---------------------------------------------------------------- the run
function contenders() {
  const all = [
    pageContender('tabtune-webgpu', 'tabtune, Chromium WebGPU', '/bench/tabtune.html', 'ttbench', 'gpu', [1, 2, 3, 4, 5, 6]),
    pageContender('tabtune-wasm', 'tabtune, Chromium wasm CPU', '/bench/tabtune.html', 'ttbench', 'cpu', [1, 2, 3, 4, 5, 6, 7]),
    nativeContender('tabtune-native-cpu', 'tabtune native, CPU', 'cpu'),
    nativeContender('tabtune-native-lavapipe', 'tabtune native, wgpu on lavapipe', 'gpu'),
    pageContender('tfjs-webgpu', 'TF.js, Chromium WebGPU', '/bench/tfjs.html', 'tfbench', 'webgpu', [1, 2, 3, 4, 5]),
    pageContender('tfjs-wasm', 'TF.js, Chromium WASM', '/bench/tfjs.html', 'tfbench', 'wasm', [1, 2, 3, 4, 5]),
    torchContender(),
  ];
  // --before PATH: another core build (a folder served under the repository, e.g. bench/before/
  // made before a change: www's worker.js and decoder.js, and pkg/ a copy of www/pkg-bench) as
  // extra rows, for a before/after comparison in one run: the micro workloads on its pkg/, the
  // first step through its worker.
  if (opt.before) {
    const q = `?pkg=${encodeURIComponent(`${opt.before}pkg/`)}`;
    const workerUrl = `${opt.before}worker.js`;
    all.splice(2, 0,
      pageContender('before-webgpu', `tabtune before (${opt.before}), WebGPU`, `/bench/tabtune.html${q}`, 'ttbench', 'gpu', [1, 2, 4, 5, 6], { workerUrl }),
      pageContender('before-wasm', `tabtune before (${opt.before}), wasm CPU`, `/bench/tabtune.html${q}`, 'ttbench', 'cpu', [1, 2, 4, 5, 6], { workerUrl }));
  }
  // --whole-batch: the training steps (2, 5) also with micro-batches off (`micro_batch` 0: the
  // whole batch at once, as before issue 16), beside the core's own choice.
  if (opt['whole-batch']) {
    all.push(
      pageContender('whole-webgpu', 'tabtune, WebGPU, whole batch', '/bench/tabtune.html', 'ttbench', 'gpu', [2, 5], { micro: 0 }),
      pageContender('whole-wasm', 'tabtune, wasm CPU, whole batch', '/bench/tabtune.html', 'ttbench', 'cpu', [2, 5], { micro: 0 }),
      nativeContender('whole-native-cpu', 'tabtune native, CPU, whole batch', 'cpu', 0),
      nativeContender('whole-lavapipe', 'tabtune native, lavapipe, whole batch', 'gpu', 0));
    for (const c of all.slice(-2)) c.supports = [2, 5];
  }
  const want = opt.contenders?.split(',');
  return want ? all.filter((c) => want.includes(c.name)) : all;
}
// Which tabtune row each contender is compared with.
const PAIR = { 'before-webgpu': 'tabtune-webgpu', 'before-wasm': 'tabtune-wasm', 'whole-webgpu': 'tabtune-webgpu', 'whole-wasm': 'tabtune-wasm', 'whole-native-cpu': 'tabtune-native-cpu', 'whole-lavapipe': 'tabtune-native-lavapipe', 'tfjs-webgpu': 'tabtune-webgpu', 'tfjs-wasm': 'tabtune-wasm', 'pytorch-cpu': 'tabtune-native-cpu', 'tabtune-native-lavapipe': 'tabtune-native-cpu' };

async function main() {
  const started = new Date();
  const only = opt.only ? opt.only.split(',').map(Number) : WORKLOADS.map((w) => w.id);
  const results = { date: started.toISOString(), command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(), options: { reps: REPS, cap_s: CAP_S, pause_s: Number(opt.pause) }, machine: machine(), contenders: {}, workloads: {} };
  server = await serve({ port: 0, quiet: true });
  origin = `http://127.0.0.1:${server.address().port}`;
  const list = contenders();
  for (const c of list) {
    log(`start ${c.name}`);
    try { results.contenders[c.name] = { label: c.label, info: await withTimeout(c.start(), 300_000, `${c.name} start`) }; }
    catch (err) { results.contenders[c.name] = { label: c.label, error: firstLine(err) }; log(`  ${c.name}: ${err.message}`); }
  }
  const alive = (c) => !results.contenders[c.name].error;
  // Each workload gets a fresh browser: a page's wasm memory never shrinks (workload 2 grows
  // the core's heap past 2 GiB, which would count in every later page-memory figure) and a
  // WebGPU device may be lost after a heavy workload.
  const used = new Set();
  const fresh = async (c) => {
    if (c.kind === 'browser' && used.has(c.name)) await restart(c, results);
    used.add(c.name);
  };
  const head = dataset(HEAD_IMAGES);
  const specOf = (w) => ({ ...w.spec, seed: 0, n: HEAD_IMAGES, files: head.files, urls: head.urls, labels: head.labels, classes: 10, epochs: EPOCHS, valFraction: 0.2 });

  for (const w of WORKLOADS.filter((x) => only.includes(x.id) && x.id <= 5)) {
    const cells = {};
    const runners = list.filter((c) => c.supports.includes(w.id));
    for (const c of runners) {
      cells[c.name] = { reps: [] };
      await fresh(c);
      if (!alive(c)) { cells[c.name].error = `did not start: ${results.contenders[c.name].error}`; continue; }
      const [from, factor] = ESTIMATE[w.key] ?? [];
      const earlier = results.workloads[from]?.[c.name]?.reps.map((r) => r.seconds);
      if (earlier?.length && median(earlier) * factor > MAX_ESTIMATE_S) {
        cells[c.name].error = `skipped: ${from} took ${median(earlier).toFixed(1)} s here, so a repetition would take about ${(median(earlier) * factor).toFixed(0)} s, over --max-estimate ${MAX_ESTIMATE_S}`;
        log(`  ${c.name}: ${cells[c.name].error}`);
        continue;
      }
      log(`${w.id} ${w.key}: setup ${c.name}`);
      try {
        const spec = specOf(w);
        const pageSpec = { ...spec, files: c.kind === 'browser' ? spec.urls : spec.files };
        cells[c.name].setup = await c.setup(w, pageSpec);
        log(`  warm-up ${JSON.stringify(cells[c.name].setup)}`);
      } catch (err) { cells[c.name].error = `setup: ${firstLine(err)}`; log(`  ${err.message}`); await restart(c, results); }
    }
    for (let round = 0; round < REPS; round++) {
      for (let i = 0; i < runners.length; i++) {
        const c = runners[(i + round) % runners.length];
        const cell = cells[c.name];
        const spent = cell.reps.reduce((s, r) => s + r.seconds, 0);
        if (cell.error || spent >= CAP_S) continue;
        try {
          const r = await c.rep();
          cell.reps.push(r);
          log(`${w.id} ${w.key} ${c.name} rep ${cell.reps.length}: ${r.seconds.toFixed(3)} s`);
        } catch (err) { cell.error = `repetition ${cell.reps.length + 1}: ${firstLine(err)}`; log(`  ${cell.error}`); await restart(c, results); }
      }
    }
    for (const c of runners) c.done();
    results.workloads[w.key] = cells;
    save(results);
  }

  if (only.includes(6)) {
    const w = WORKLOADS[5];
    // 20 images, 2 of each class.
    const few = dataset(64);
    const seen = {};
    const pick = few.labels.map((l, i) => ((seen[l] = (seen[l] ?? 0) + 1) <= 2 ? i : -1)).filter((i) => i >= 0);
    const urls = pick.map((i) => few.urls[i]);
    const labels = pick.map((i) => few.labels[i]);
    const wasm = readFileSync(join(ROOT, 'www/pkg/tabtune_bg.wasm'));
    const cells = { wasm: { raw_bytes: wasm.length, gzip_bytes: gzipSync(wasm, { level: 9 }).length } };
    for (let round = 0; round < REPS; round++) {
      for (const c of list.filter((x) => x.supports.includes(6) && alive(x))) {
        const cell = (cells[c.name] ??= { reps: [] });
        if (cell.error) continue;
        try {
          const r = await c.firstStep(urls, labels);
          cell.reps.push({ ...r, seconds: r.firstStepS });
          log(`6 first_step ${c.name}: ${JSON.stringify(r)}`);
        } catch (err) { cell.error = firstLine(err); log(`  ${err.message}`); }
      }
    }
    results.workloads[w.key] = cells;
    save(results);
  }

  if (only.includes(7)) {
    const cells = {};
    const sizes = opt.sizes.split(',').map(Number);
    const browserSizes = opt['browser-sizes'].split(',').map(Number);
    for (const c of list.filter((x) => x.supports.includes(7) && alive(x))) {
      await fresh(c);
      if (!alive(c)) { cells[c.name] = { sizes: [], error: results.contenders[c.name].error }; continue; }
      const cell = (cells[c.name] = { sizes: [] });
      for (const n of c.kind === 'browser' ? browserSizes : sizes) {
        try {
          let r;
          if (c.kind === 'browser') {
            const d = dataset(n);
            await c.setup({ key: 'head_phase' }, { epochs: EPOCHS, valFraction: 0.2, seed: 0, files: d.urls, labels: d.labels, warm: false });
            r = await c.rep();
          } else {
            r = await c.scale(n);
          }
          cell.sizes.push({ n, ...r });
          log(`7 scaling ${c.name} n=${n}: ${r.seconds.toFixed(1)} s`);
        } catch (err) { cell.sizes.push({ n, error: firstLine(err) }); log(`  ${err.message}`); break; }
      }
    }
    results.workloads.scaling = cells;
    save(results);
  }

  for (const c of list) await c.stop();
  server.close();
  results.seconds = (Date.now() - started) / 1000;
  const file = save(results);
  const table = render(results);
  console.log(table);
  console.log(`\nraw figures: ${file}`);
  if (!opt['no-update']) updateDoc(table);
}

async function restart(c, results) {
  // A timed-out or crashed contender starts afresh for the next workload.
  try { await c.stop(); } catch { /* already gone */ }
  try { await c.start(); } catch (err) { results.contenders[c.name].error = `restart: ${err.message}`; }
}

function machine() {
  const version = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]; } catch (e) { return `unavailable: ${e.message.split('\n')[0]}`; } };
  let torchInstall = null;
  try { torchInstall = JSON.parse(readFileSync(join(ROOT, 'bench/.venv/tabtune-install.json'), 'utf8')); } catch { /* installed by hand */ }
  return {
    cpu: cpus()[0]?.model, cores: cpus().length, memory_bytes: totalmem(), kernel: release(),
    node: process.version, rustc: version('rustc', ['--version']), chromium: version(process.env.CHROMIUM ?? '/usr/bin/chromium', ['--version']),
    tabtune_commit: version('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    torch_install: torchInstall,
  };
}

let resultFile = null;
function save(results) {
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  resultFile ??= join(ROOT, 'bench/results', `${results.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(resultFile, JSON.stringify(results, null, 1) + '\n');
  return resultFile;
}

// ---------------------------------------------------------------- the table
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const mib = (b) => (b ? `${(b / 2 ** 20).toFixed(0)} MiB` : '–');

function render(results) {
  const out = [];
  const m = results.machine;
  out.push(`Run ${results.date.slice(0, 16).replace('T', ' ')} UTC, tabtune ${m.tabtune_commit}: \`${results.command}\``);
  out.push(`Machine: ${m.cpu}, ${m.cores} cores, ${(m.memory_bytes / 2 ** 30).toFixed(0)} GiB, no GPU (WebGPU in Chromium is SwiftShader, native wgpu is lavapipe: both emulate a GPU on these CPU cores). ${m.chromium}; ${m.rustc}; Node ${m.node}.`);
  const versions = Object.entries(results.contenders).map(([n, c]) => `${n}: ${c.error ? `did not start: ${c.error}` : describe(n, c.info)}`);
  out.push('Contenders: ' + versions.join('; ') + '.');
  if (m.torch_install) out.push(`PyTorch installed by bench/setup.sh from PyPI in ${m.torch_install.seconds} s (${(m.torch_install.bytes / 2 ** 30).toFixed(1)} GiB: ${m.torch_install.packages}).`);
  out.push(`Weights random (speed does not depend on them; workloads 3, 6, 7 of tabtune load the real MobileNetV2 file). Medians of ${results.options.reps} repetitions after a warm-up (fewer where a cell passed ${results.options.cap_s} s), min–max in brackets. "vs tabtune": the pair's time over tabtune's, above 1 = tabtune faster.`);
  out.push('');
  for (const w of WORKLOADS.filter((x) => x.id <= 5 && results.workloads[x.key])) {
    out.push(`**${w.id}. ${w.title}**`, '');
    out.push(`| contender | ${w.id === 3 ? 'seconds' : w.perStep ? 'ms/step' : 'ms/batch'} | ${w.rate ?? 'images/s'} | n | peak memory | vs tabtune |`, '|---|---|---|---|---|---|');
    const cells = results.workloads[w.key];
    for (const [name, cell] of Object.entries(cells)) {
      if (!cell.reps.length) { out.push(`| ${name} | ${/^skipped/.test(cell.error) ? '' : 'error: '}${cell.error ?? 'no repetition'} | | | | |`); continue; }
      const secs = cell.reps.map((r) => r.seconds);
      const rates = cell.reps.map((r) => r.items / r.seconds);
      const scale = w.id === 3 ? 1 : 1000;
      const time = `${fmt(median(secs) * scale)} (${fmt(Math.min(...secs) * scale)}–${fmt(Math.max(...secs) * scale)})`;
      const pair = PAIR[name] && cells[PAIR[name]]?.reps.length ? median(secs) / median(cells[PAIR[name]].reps.map((r) => r.seconds)) : null;
      const ratio = PAIR[name] ? (pair ? `${fmt(pair)} (vs ${PAIR[name]})` : `– (${PAIR[name]} has no figure)`) : 'ref';
      const mem = memory(cell.reps);
      const note = cell.error ? ` (then: ${cell.error})` : '';
      out.push(`| ${name} | ${time}${note} | ${fmt(median(rates))} | ${secs.length} | ${mem} | ${ratio} |`);
    }
    out.push('');
  }
  const fs = results.workloads.first_step;
  if (fs) {
    out.push(`**6. ${WORKLOADS[5].title}**`, '');
    out.push(`wasm: ${(fs.wasm.raw_bytes / 1024).toFixed(0)} KiB raw, ${(fs.wasm.gzip_bytes / 1024).toFixed(0)} KiB gzipped.`, '');
    if (results.options.pause_s) out.push(`${results.options.pause_s} s between the model loaded and the dataset given (\`--pause\`), as a user choosing files.`, '');
    out.push('| contender | first step (s from navigation) | model loaded (s) | dataset set (s) | train() to first step (s) | n |', '|---|---|---|---|---|---|');
    for (const [name, cell] of Object.entries(fs)) {
      if (name === 'wasm') continue;
      if (!cell.reps.length) { out.push(`| ${name} | error: ${cell.error} | | | | |`); continue; }
      const col = (k) => fmt(median(cell.reps.map((r) => r[k])));
      const wait = cell.reps.every((r) => r.trainS !== undefined) ? fmt(median(cell.reps.map((r) => r.firstStepS - r.trainS))) : '–';
      out.push(`| ${name} | ${col('firstStepS')} | ${col('modelLoadedS')} | ${col('datasetS')} | ${wait} | ${cell.reps.length} |`);
    }
    out.push('', 'TF.js and PyTorch have no counterpart (no pre-trained model file is loaded there).', '');
  }
  const sc = results.workloads.scaling;
  if (sc) {
    out.push(`**7. ${WORKLOADS[6].title}**`, '');
    out.push('| contender | images | seconds | ms/image | peak memory |', '|---|---|---|---|---|');
    for (const [name, cell] of Object.entries(sc)) {
      if (cell.error) out.push(`| ${name} | | error: ${cell.error} | | |`);
      for (const s of cell.sizes) {
        if (s.error) { out.push(`| ${name} | ${s.n} | error: ${s.error} | | |`); continue; }
        out.push(`| ${name} | ${s.n} | ${fmt(s.seconds, 1)} | ${fmt((s.seconds * 1000) / s.n)} | ${memory([s])} |`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}

function describe(name, info) {
  if (!info) return '';
  if (name.startsWith('tfjs')) return `TF.js ${info.version} ${info.backend}${info.backend === 'wasm' ? ` (SIMD ${info.simd}, threads ${info.threads})` : ''}`;
  if (name === 'pytorch-cpu') return `torch ${info.torch}, torchvision ${info.torchvision}, transformers ${info.transformers}, ${info.threads} threads`;
  const d = info.device ?? info;
  return `${d.backend}${d.adapter ? ` (${d.adapter.description || d.adapter.vendor || ''})` : ''}`;
}

function memory(reps) {
  const peak = (k) => Math.max(0, ...reps.map((r) => r[k] ?? r.memory?.[k] ?? 0));
  const parts = [];
  const micro = [...new Set(reps.map((r) => r.micro_batch).filter((m) => m != null))];
  if (micro.length) parts.push(`micro-batch ${micro.join('/')}`);
  if (peak('peak_rss_bytes')) parts.push(`RSS ${mib(peak('peak_rss_bytes'))}`);
  if (peak('browser_pss_peak_bytes')) parts.push(`Chromium PSS ${mib(peak('browser_pss_peak_bytes'))}`);
  // The pool after the repetition; in a training step also the most it held (sampled after
  // each micro-batch's forward and backward pass) during the timed steps ("step peak") and
  // during the whole phase ("phase peak": the warm-up step too, whose first micro-batches
  // measure the pool).
  for (const [after, most, step] of [['deviceBytesReserved', 'deviceBytesPeak', 'deviceBytesStepPeak'], ['device_bytes_reserved', 'device_bytes_peak', 'device_bytes_step_peak']]) {
    if (!peak(after)) continue;
    const peaks = [peak(step) ? `step peak ${mib(peak(step))}` : '', peak(most) ? `phase peak ${mib(peak(most))}` : ''].filter(Boolean);
    parts.push(`GPU pool ${mib(peak(after))}${peaks.length ? ` (${peaks.join(', ')})` : ''}`);
  }
  if (peak('tfBytes')) parts.push(`TF.js tensors ${mib(peak('tfBytes'))}`);
  if (peak('wasmBytes')) parts.push(`wasm ${mib(peak('wasmBytes'))}`);
  return parts.join(', ') || '–';
}

function updateDoc(table) {
  const file = join(ROOT, 'BENCHMARKS.md');
  const begin = '<!-- bench:begin (bench/run.mjs writes between these markers) -->';
  const end = '<!-- bench:end -->';
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
  const a = doc.indexOf(begin);
  const b = doc.indexOf(end);
  if (a < 0 || b < a) throw new Error(`BENCHMARKS.md lacks the markers ${begin} ... ${end}`);
  writeFileSync(file, doc.slice(0, a + begin.length) + '\n' + table + '\n' + doc.slice(b));
  log('BENCHMARKS.md updated');
}

// `--render bench/results/X.json`: the table of an earlier (or interrupted) run, without
// running anything; each workload's figures are saved as soon as it finishes.
const run = opt.render
  ? async () => {
    const table = render(JSON.parse(readFileSync(opt.render, 'utf8')));
    console.log(table);
    if (!opt['no-update']) updateDoc(table);
  }
  : main;
run().catch((err) => { console.error(err); process.exit(1); });
