// The worker owns the wasm core, the device, the model files and the dataset; www/tabtune.js
// sends it calls `{id, type, ...args}` and gets `{id, type: 'result' | 'progress' |
// 'checkpoint' | 'error', ...}` back. Images are decoded (decoder.js) when the core asks for
// them, a few ahead: never all pixels at once.
import init, { Session } from './pkg/tabtune.js';

let session = null;
let base = null; // {kind, weights, config, tokenizer?, extras?, name}: the model to fine-tune
let dataset = null; // image: {kind, classes, items, labels, split?}; text: {kind, data, name, columns}
let last = null; // the last run's report
const controllers = new Map();

// One image, decoded by the browser only when the core asks for it (the core asks a few
// ahead), in decoder.js's worker so decoding goes on while this worker computes.
// `source` is a URL, a Blob (a File the user dropped) or an ImageBitmap.
let decoder = null;
const decoding = new Map(); // id -> {resolve, reject}
let nextDecode = 0;
function decode(source) {
  if (!decoder) {
    decoder = new Worker(new URL('./decoder.js', import.meta.url), { type: 'module' });
    decoder.onmessage = ({ data }) => {
      const waiting = decoding.get(data.id);
      decoding.delete(data.id);
      if (data.error !== undefined) waiting.reject(new Error(data.error));
      else waiting.resolve(data);
    };
    decoder.onerror = (event) => {
      // The decoder could not start (e.g. decoder.js missing): fail every waiting image.
      const error = new Error(`the image decoder worker failed: ${event.message ?? 'could not load decoder.js'}`);
      for (const waiting of decoding.values()) waiting.reject(error);
      decoding.clear();
      decoder = null;
    };
  }
  return new Promise((resolve, reject) => {
    const id = nextDecode++;
    decoding.set(id, { resolve, reject });
    decoder.postMessage({ id, source });
  });
}

// Class names of image labels: sorted, numerically when every one is a number (as the core
// sorts a folder's classes and a table's labels).
function classesOf(labels) {
  const names = [...new Set(labels.map(String))];
  const numeric = names.every((n) => n.trim() !== '' && !Number.isNaN(Number(n)));
  return names.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function setImages(spec) {
  const items = spec.items.map((item, i) => ({
    name: item.name ?? (item.source instanceof Blob ? item.source.name : String(item.source).split('/').at(-1)) ?? `image ${i}`,
    label: String(typeof item.label === 'number' && spec.classes ? spec.classes[item.label] : item.label),
    source: item.source,
  }));
  const classes = spec.classes ?? classesOf(items.map((i) => i.label));
  const index = new Map(classes.map((c, i) => [c, i]));
  const unknown = items.find((i) => !index.has(i.label));
  if (unknown) throw new Error(`${unknown.name}: label "${unknown.label}" is not one of the classes ${JSON.stringify(classes)}`);
  dataset = { kind: 'image', classes, items, labels: items.map((i) => index.get(i.label)), split: spec.split };
  return Session.summarizeImages(classes, Uint32Array.from(dataset.labels));
}

function setText(spec) {
  const summary = Session.summarizeText(spec.data, spec.name, spec.columns ?? {});
  dataset = {
    kind: 'text',
    data: spec.data,
    name: spec.name,
    columns: { text: summary.text_column, label: summary.label_column, per_class: spec.columns?.per_class },
    counts: summary.counts,
  };
  return summary;
}

const counts = () =>
  dataset.kind === 'text'
    ? Uint32Array.from(dataset.counts)
    : Uint32Array.from(dataset.classes.map((_, c) => dataset.labels.filter((l) => l === c).length));

// One fine-tuning call of the core on `model` (files) per the whole `recipe`.
function finetune(model, recipe, progress, signal) {
  if (dataset.kind === 'text') {
    return session.finetuneText(model, dataset.data, dataset.name, dataset.columns, recipe, progress, signal);
  }
  return session.finetuneImages(
    model.weights,
    model.name,
    { classes: dataset.classes, items: dataset.items.map(({ name }, i) => ({ name, label: dataset.labels[i] })), split: dataset.split },
    (i) => decode(dataset.items[i].source),
    recipe,
    progress,
    signal,
  );
}

// The second phase from the head phase's checkpoint (`head.epochs: 0` keeps its head); the
// report is both phases'.
async function finishRun(checkpoint, recipe, first, progress, signal) {
  const model = { ...base, weights: checkpoint.model, config: checkpoint.config };
  const second = await finetune(model, { ...recipe, head: { ...recipe.head, epochs: 0 } }, progress, signal);
  const report = {
    ...second.report,
    features: first.features,
    truncated: first.truncated,
    phases: [...first.phases, ...second.report.phases],
    skipped: [...first.skipped, ...second.report.skipped.filter(([n]) => !first.skipped.some(([m]) => m === n))],
  };
  return report;
}

async function train(recipe, reply, progress, signal) {
  if (!base) throw new Error('no model is loaded');
  if (!dataset) throw new Error('no dataset is set: call setDataset first');
  if (base.kind !== dataset.kind) throw new Error(`a ${base.kind} model cannot train on a ${dataset.kind} dataset`);
  const full = Session.checkRecipe(recipe ?? {}, base.kind, counts());
  if (!full.finetune || full.head.epochs === 0) {
    last = (await finetune(base, full, progress, signal)).report;
    return last;
  }
  // Phase 1 alone, then a checkpoint the page can keep (a reload resumes from it), then phase 2.
  const first = await finetune(base, { ...full, finetune: null }, progress, signal);
  const checkpoint = { model: first.model, config: first.config };
  reply({ type: 'checkpoint', phase: 'head', checkpoint: { ...checkpoint, model: checkpoint.model.slice() }, recipe: full, report: first.report });
  last = await finishRun(checkpoint, full, first.report, progress, signal);
  return last;
}

async function call(data, reply) {
  const progress = (event) => reply({ type: 'progress', event });
  switch (data.type) {
    case 'init':
      await init();
      session = await Session.create(data.device ?? 'auto');
      return session.device;
    case 'load-model': {
      const m = data.model;
      const info = Session.describeModel(m.weights, m.name, m.config ?? undefined);
      if (m.kind && m.kind !== info.kind) throw new Error(`${m.name}: expected a ${m.kind} model, the file holds a ${info.kind} model (${info.arch})`);
      if (info.kind === 'text' && !m.tokenizer) throw new Error(`${m.name}: a text model needs its tokenizer.json`);
      base = { ...m, kind: info.kind };
      info.name = m.name;
      // A fine-tuned model (config.json names its classes) predicts at once.
      if (info.classes) await session.loadTrained(info.kind, base);
      return info;
    }
    case 'set-dataset': {
      last = null;
      const spec = data.dataset;
      if (spec.kind === 'text') return setText(spec);
      // Chunks after the first append to it.
      const before = spec.append && dataset?.kind === 'image' ? dataset.items : [];
      return setImages({ ...spec, items: [...before, ...spec.items] });
    }
    case 'add-data': {
      const items = dataset?.kind === 'image' ? dataset.items : [];
      const added = data.images.map((source, i) => ({
        label: data.label,
        source,
        name: `${data.label}/${source instanceof Blob && source.name ? source.name : `added-${items.length + i}.png`}`,
      }));
      return setImages({ items: [...items, ...added] });
    }
    case 'default-recipe':
      return Session.defaultRecipe(base?.kind ?? data.kind ?? 'image');
    case 'check-recipe':
      return Session.checkRecipe(data.recipe ?? {}, base?.kind ?? 'image', dataset ? counts() : undefined);
    case 'train':
    case 'resume': {
      const controller = new AbortController();
      controllers.set(data.id, controller);
      try {
        if (data.type === 'train') return await train(data.recipe, reply, progress, controller.signal);
        const run = data.run;
        base = run.base;
        if (run.dataset.kind === 'text') setText(run.dataset);
        else setImages(run.dataset);
        last = await finishRun(run.checkpoint, run.recipe, run.report, progress, controller.signal);
        return last;
      } finally {
        controllers.delete(data.id);
      }
    }
    case 'evaluate':
      if (!last) throw new Error('nothing has been trained in this session yet');
      return { metrics: last.metrics, misclassified: last.misclassified, classes: last.classes };
    case 'predict': {
      const input = data.input;
      if (base?.kind === 'text') {
        const rows = await session.predictText(Array.isArray(input) ? input : [input]);
        return Array.isArray(input) ? rows : rows[0];
      }
      const { width, height, data: pixels } = await decode(input);
      return session.predictImage(width, height, new Uint8Array(pixels.buffer));
    }
    case 'export':
      return session.exportModel(base?.extras ?? {});
    default:
      throw new Error(`unknown call ${data.type}`);
  }
}

self.onmessage = async ({ data }) => {
  const { id } = data;
  const reply = (message, transfer = []) => self.postMessage({ id, ...message }, transfer);
  if (data.type === 'cancel') {
    controllers.get(id)?.abort();
    return;
  }
  try {
    if (data.type !== 'init' && !session) throw new Error('the device is not ready yet');
    const value = await call(data, reply);
    reply({ type: 'result', value });
  } catch (err) {
    reply({ type: 'error', message: String(err?.message ?? err) });
  }
};
