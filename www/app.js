// The page: owns the DOM, talks to the worker by messages, never touches the core directly.
import { drawSeries } from './plot.js';

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const losses = [];
const ftLosses = [];
let running = null; // 'head-demo' | 'finetune' | 'text'

function describe(device) {
  if (device.backend === 'cpu') return 'CPU (wasm, burn flex backend)';
  const a = device.adapter ?? {};
  const parts = [a.vendor, a.architecture, a.description].filter(Boolean).join(' · ');
  return `WebGPU — ${parts || 'adapter'}${a.software ? ' (software rendering)' : ''}`;
}

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'ready': {
      $('device').textContent = describe(data.device);
      $('device').dataset.state = data.device.backend;
      if (data.device.fallback_reason) {
        $('fallback').hidden = false;
        $('fallback').textContent =
          `Running on the CPU, which is slower: ${data.device.fallback_reason}.`;
      }
      $('train').disabled = false;
      $('finetune').disabled = false;
      $('finetune-text').disabled = false;
      break;
    }
    case 'progress': {
      const e = data.event;
      if (running === 'finetune' || running === 'text') {
        showFinetuneProgress(e, panel());
      } else if (e.kind === 'step') {
        losses.push(e.loss);
        $('progress').value = e.step / e.total_steps;
        $('status').textContent =
          `Epoch ${e.epoch} · step ${e.step}/${e.total_steps} · loss ${e.loss.toFixed(4)} · ` +
          `${Math.round(e.throughput)} rows/s · ${e.eta_s.toFixed(1)} s left`;
        drawSeries($('loss-plot'), losses, { label: 'loss' });
      }
      break;
    }
    case 'done': {
      const r = data.report;
      const acc = r.val_accuracy.at(-1);
      const first = r.losses[0];
      const last = r.losses.at(-1);
      $('result').textContent =
        `Done: ${r.losses.length} steps in ${r.seconds.toFixed(2)} s; ` +
        `loss ${first.toFixed(4)} → ${last.toFixed(4)}; validation accuracy ${(acc * 100).toFixed(1)}%`;
      $('result').dataset.firstLoss = first;
      $('result').dataset.lastLoss = last;
      $('result').dataset.accuracy = acc;
      finish();
      break;
    }
    case 'finetuned':
      showFinetuned(data, panel());
      finish();
      break;
    case 'error': {
      const status = running === 'finetune' || running === 'text' ? $(`${panel().id}-status`) : $('status');
      status.textContent = `Error: ${data.message}`;
      status.className = 'error';
      if ($('device').dataset.state === 'pending') $('device').textContent = 'No device';
      finish();
      break;
    }
  }
};

function finish() {
  running = null;
  $('train').disabled = false;
  $('cancel').disabled = true;
  $('finetune').disabled = false;
  $('ft-cancel').disabled = true;
  $('finetune-text').disabled = false;
  $('tx-cancel').disabled = true;
}

// The fine-tuning panel in use: element id prefix and what its rows are called.
const panel = () => (running === 'text' ? { id: 'tx', unit: 'texts' } : { id: 'ft', unit: 'images' });

const percent = (x) => (x == null ? '–' : `${(x * 100).toFixed(1)}%`);

function showFinetuneProgress(e, { id, unit }) {
  const el = (name) => $(`${id}-${name}`);
  if (e.kind === 'features') {
    el('progress').value = e.done / e.total;
    el('status').textContent =
      `Features: ${e.done}/${e.total} ${unit} · ${e.throughput.toFixed(1)} ${unit}/s · ` +
      `${Math.round(e.eta_s)} s left`;
  } else if (e.kind === 'step') {
    ftLosses.push(e.loss);
    el('progress').value = e.step / e.total_steps;
    el('status').textContent =
      `${e.phase === 'head' ? 'Phase 1 (head)' : 'Phase 2 (fine-tuning)'} · epoch ${e.epoch} · ` +
      `step ${e.step}/${e.total_steps} · loss ${e.loss.toFixed(4)} · ` +
      `${e.throughput.toFixed(1)} ${unit}/s · ${Math.round(e.eta_s)} s left`;
    drawSeries(el('plot'), ftLosses, { label: 'loss' });
  } else if (e.kind === 'epoch') {
    el('result').textContent +=
      `${e.phase} epoch ${e.epoch}: loss ${e.train_loss.toFixed(4)}, ` +
      `validation accuracy ${percent(e.val_accuracy)}\n`;
  }
}

function showFinetuned({ report, model, config }, { id, unit }) {
  const el = (name) => $(`${id}-${name}`);
  const lines = report.phases.map(
    (p) =>
      `${p.phase}: ${p.train_rows} train / ${p.val_rows} val ${unit}, ${p.losses.length} steps ` +
      `in ${p.seconds.toFixed(1)} s, kept epoch ${p.best_epoch}, ` +
      `validation accuracy ${percent(p.val_accuracy[p.best_epoch - 1])}`,
  );
  for (const [name, why] of report.skipped) lines.push(`skipped ${name}: ${why}`);
  if (report.truncated) lines.push(`${report.truncated} ${unit} were cut at the maximum length`);
  if (report.metrics) {
    lines.push(`final validation accuracy ${percent(report.metrics.accuracy)}, ` +
      `macro F1 ${report.metrics.macro_f1.toFixed(4)}`);
  }
  el('result').textContent += lines.join('\n');
  const result = el('result');
  const head = report.phases.find((p) => p.phase === 'head');
  result.dataset.headAccuracy = head?.val_accuracy[head.best_epoch - 1] ?? '';
  result.dataset.finalAccuracy = report.metrics?.accuracy ?? '';
  result.dataset.phases = report.phases.map((p) => p.phase).join(',');
  const link = (name, blob) => {
    const a = el(name);
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
    a.hidden = false;
  };
  link('download', new Blob([model], { type: 'application/octet-stream' }));
  link('config', new Blob([config], { type: 'application/json' }));
  el('status').textContent = 'Done.';
}

// The demo digits listed by `make assets` (assets/index.json): the first N of each class.
async function demoDataset(perClass) {
  const index = await (await fetch('assets/index.json')).json();
  const mnist = index.datasets.find((d) => d.name === 'mnist');
  const model = index.models.find((m) => m.name === 'mobilenet_v2');
  const taken = new Map();
  const items = [];
  for (const url of mnist.files) {
    const cls = url.split('/').at(-2);
    const n = taken.get(cls) ?? 0;
    if (n >= perClass) continue;
    taken.set(cls, n + 1);
    items.push({ name: url.split('/').slice(-2).join('/'), url, label: mnist.classes.indexOf(cls) });
  }
  // Absolute URLs: the worker resolves relative ones against its own script.
  for (const item of items) item.url = new URL(item.url, location.href).href;
  return {
    model: new URL(`assets/models/${model.name}/${model.weights}`, location.href).href,
    dataset: { classes: mnist.classes, items },
  };
}

// A panel's form: {perClass, recipe}, or null after saying what is wrong in its status line.
// `ids` names the inputs: per-class, head epochs, fine-tune epochs, unfreeze select, status.
function readForm(ids, what) {
  const perClass = Number($(ids.perClass).value);
  const headEpochs = Number($(ids.headEpochs).value);
  const ftEpochs = Number($(ids.ftEpochs).value);
  const bad = [
    [perClass, 2, `${what} per class`],
    [headEpochs, 1, 'Head epochs'],
    [ftEpochs, 0, 'Fine-tune epochs'],
  ].find(([v, min]) => !Number.isInteger(v) || v < min);
  if (bad) {
    fail(ids.status, `${bad[2]} must be a whole number of at least ${bad[1]}.`);
    return null;
  }
  const layers = $(ids.unfreeze).value;
  const unfreeze = layers === 'all' ? 'all' : { last: Number(layers) };
  return {
    perClass,
    recipe: {
      head: { epochs: headEpochs },
      finetune: ftEpochs > 0 ? { epochs: ftEpochs, unfreeze } : null,
    },
  };
}

function fail(status, text) {
  $(status).textContent = text;
  $(status).className = 'error';
}

// Lock the buttons and clear the panel `id` ('ft' | 'tx') for a run of kind `kind`.
function begin(id, kind) {
  ftLosses.length = 0;
  $(`${id}-status`).className = '';
  $(`${id}-result`).textContent = '';
  for (const b of ['finetune', 'finetune-text', 'train']) $(b).disabled = true;
  $(`${id}-cancel`).disabled = false;
  running = kind;
}

$('finetune').onclick = async () => {
  const ids = { perClass: 'per-class', headEpochs: 'head-epochs', ftEpochs: 'ft-epochs',
    unfreeze: 'unfreeze', status: 'ft-status' };
  const form = readForm(ids, 'Images');
  if (!form) return;
  let demo;
  try {
    demo = await demoDataset(form.perClass);
  } catch (err) {
    fail('ft-status', `Error: the demo assets are missing (run make assets): ${err}`);
    return;
  }
  begin('ft', 'finetune');
  worker.postMessage({ type: 'finetune', ...demo, recipe: form.recipe });
};
$('ft-cancel').onclick = () => worker.postMessage({ type: 'cancel' });

// The demo text set and model listed by `make assets`: the first N snippets of each class.
$('finetune-text').onclick = async () => {
  const ids = { perClass: 'tx-per-class', headEpochs: 'tx-head-epochs', ftEpochs: 'tx-ft-epochs',
    unfreeze: 'tx-unfreeze', status: 'tx-status' };
  const form = readForm(ids, 'Texts');
  if (!form) return;
  let index;
  try {
    index = await (await fetch('assets/index.json')).json();
  } catch (err) {
    fail('tx-status', `Error: the demo assets are missing (run make assets): ${err}`);
    return;
  }
  const m = index.models.find((x) => x.kind === 'text');
  const d = index.datasets.find((x) => x.kind === 'text');
  const url = (path) => new URL(path, location.href).href;
  begin('tx', 'text');
  worker.postMessage({
    type: 'finetune-text',
    model: {
      name: m.name,
      weights: url(`${m.path}/${m.weights}`),
      config: url(`${m.path}/config.json`),
      tokenizer: url(`${m.path}/tokenizer.json`),
    },
    data: url(d.path),
    columns: { per_class: form.perClass },
    recipe: form.recipe,
  });
};
$('tx-cancel').onclick = () => worker.postMessage({ type: 'cancel' });

$('train').onclick = () => {
  const epochs = Number($('epochs').value);
  if (!Number.isInteger(epochs) || epochs < 1) {
    $('status').textContent = 'Epochs must be a whole number of at least 1.';
    $('status').className = 'error';
    return;
  }
  losses.length = 0;
  $('status').className = '';
  $('result').textContent = '';
  $('train').disabled = true;
  $('finetune').disabled = true;
  $('finetune-text').disabled = true;
  $('cancel').disabled = false;
  running = 'head-demo';
  worker.postMessage({ type: 'train', recipe: { head: { epochs } }, spec: null });
};
$('cancel').onclick = () => worker.postMessage({ type: 'cancel' });

const requested = new URLSearchParams(location.search).get('device') ?? 'auto';
worker.postMessage({ type: 'init', device: requested });
