// tabtune in the tab, for bench/run.mjs: `window.ttbench` with the same calls as the TF.js
// page (init, setup, rep). The micro workloads (features, one training step) run the core's
// own bench (src/bench.rs, the code `tabtune bench` runs natively) on this page's thread; the
// end-to-end head phase goes through the public API (www/tabtune.js and its worker), as an app
// would. `?pkg=/bench/pkg-before/` loads another build of the core for the micro workloads
// (a before/after comparison in one run; the API always uses www/pkg, the micro workloads
// www/pkg-bench: the same core with the `bench` feature's entry points).
import { FineTuner } from '/www/tabtune.js';

const PKG = new URLSearchParams(location.search).get('pkg') ?? '/www/pkg-bench/';

let device = null; // 'gpu' | 'cpu'
let session = null; // the core on this thread (micro workloads)
let wasm = null; // its exports (memory)
let tuner = null; // the API (head phase)
let current = null; // () => Promise<rep>

const seconds = (t0) => (performance.now() - t0) / 1000;

function memory() {
  return {
    wasmBytes: wasm?.memory.buffer.byteLength ?? null,
    jsHeapBytes: performance.memory?.usedJSHeapSize ?? null,
  };
}

async function core() {
  if (!session) {
    const { default: init, Session } = await import(`${PKG}tabtune.js`);
    wasm = await init();
    session = await Session.create(device);
  }
  return session;
}

// The head-only phase end to end: the dataset given to the API (URLs, decoded in the worker
// as the core asks), features once, `epochs` of the head.
async function headPhase(spec, files, labels) {
  if (!tuner) tuner = await FineTuner.create({ model: 'mobilenet_v2', device });
  const t0 = performance.now();
  let featuresS = null;
  await tuner.setDataset({ kind: 'image', items: files.map((url, i) => ({ url, label: String(labels[i]) })) });
  const report = await tuner.train(
    { head: { epochs: spec.epochs, batch_size: 32 }, finetune: null, val_fraction: spec.valFraction, seed: spec.seed },
    { onProgress: (e) => { if (featuresS === null && e.kind === 'step') featuresS = seconds(t0); } },
  );
  const head = report.phases.find((p) => p.phase === 'head');
  return {
    seconds: seconds(t0),
    items: files.length,
    featuresS,
    valAccuracy: head?.val_accuracy.at(-1) ?? null,
  };
}

window.ttbench = {
  async init(choice) {
    device = choice;
    const s = await core();
    return { ...s.device, choice: device };
  },

  async setup(spec) {
    current = null;
    const t0 = performance.now();
    if (spec.workload === 'head_phase') {
      const { files, labels } = spec;
      const setupS = seconds(t0);
      const w = performance.now();
      if (spec.warm !== false) await headPhase(spec, files.slice(0, 64), labels.slice(0, 64));
      const warmupS = seconds(w);
      current = () => headPhase(spec, files, labels);
      return { setupS, warmupS };
    }
    const s = await core();
    // Only the fields the core's BenchSpec has, none undefined.
    const run = s.bench(JSON.parse(JSON.stringify({ workload: spec.workload, batch: spec.batch, tokens: spec.tokens, seed: spec.seed, micro_batch: spec.micro_batch })));
    const setupS = seconds(t0);
    const w = performance.now();
    const figures = (r) => ({ seconds: r.seconds, items: r.items, deviceBytesInUse: r.device_bytes_in_use, deviceBytesReserved: r.device_bytes_reserved, deviceBytesPeak: r.device_bytes_peak, deviceBytesStepPeak: r.device_bytes_step_peak, micro_batch: r.micro_batch });
    // The warm-up whole: with no timed repetitions (`--reps 0`) it is the row's only step.
    const warmup = figures(await run.rep());
    const warmupS = seconds(w);
    current = async () => figures(await run.rep());
    return { setupS, warmupS, warmup };
  },

  async rep() {
    if (!current) throw new Error('rep() before a successful setup()');
    const r = await current();
    // The head phase runs in the API's worker: this page's core holds none of its memory.
    return { ...r, memory: r.featuresS === undefined ? memory() : { jsHeapBytes: memory().jsHeapBytes } };
  },

  // Page load to the first finished training step of the app's path: the worker fetches and
  // compiles the wasm, the model loads, the first batch's features are extracted (shaders
  // compiled on the way), then the head's first step. Times are from navigation start.
  // `workerUrl`: another build's worker (bench/run.mjs --before); `pauseS`: seconds between
  // the model and the data, as a user choosing files (the core warms up meanwhile).
  async firstStep(files, labels, choice, { workerUrl, pauseS = 0 } = {}) {
    const marks = { pageS: performance.now() / 1000 };
    const t = await FineTuner.create({ model: 'mobilenet_v2', device: choice, workerUrl });
    marks.modelLoadedS = performance.now() / 1000;
    await new Promise((r) => setTimeout(r, pauseS * 1000));
    await t.setDataset({ kind: 'image', items: files.map((url, i) => ({ url, label: String(labels[i]) })) });
    marks.datasetS = performance.now() / 1000;
    const controller = new AbortController();
    marks.trainS = performance.now() / 1000;
    await t.train({ head: { epochs: 1, batch_size: 8 }, finetune: null, val_fraction: 0.2 }, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.kind === 'step' && marks.firstStepS === undefined) {
          marks.firstStepS = performance.now() / 1000;
          controller.abort();
        }
      },
    }).catch((err) => { if (marks.firstStepS === undefined) throw err; });
    t.terminate();
    return { ...marks, backend: t.device.backend };
  },
};
