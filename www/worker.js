// The worker routes www/tabtune.js's calls `{id, type, ...args}` to the wasm core's Session
// (which owns the model, the dataset, the phases and the checkpoints) and answers `{id, type:
// 'result' | 'progress' | 'checkpoint' | 'error', ...}`. Images are decoded (decoder.js) when
// the core asks for them, a few ahead: never all pixels at once.
import init, { Session } from './pkg/tabtune.js';

let session = null;
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

// The image sources (a URL, a Blob the user dropped, an ImageBitmap) by item index: the core
// holds the names and labels and asks for an item's pixels by its index.
let sources = [];
let kind = null; // the loaded model's kind, for `predict`'s input

// `items` [{label, source, name?}] (labels as names, or as indices into `classes`) to the core.
function setImages(spec, append) {
  const items = spec.items.map((item, i) => ({
    name: item.name ?? (item.source instanceof Blob ? item.source.name : String(item.source).split('/').at(-1)) ?? `image ${sources.length + i}`,
    label: String(typeof item.label === 'number' && spec.classes ? spec.classes[item.label] : item.label),
  }));
  const added = spec.items.map((item) => item.source);
  const [train, val] = spec.split ? [spec.split.train, spec.split.val] : [];
  const summary = session.setImages(items.map((i) => i.name), items.map((i) => i.label), spec.classes ?? undefined, train, val, append, (i) => decode(sources[i]));
  sources = append ? sources.concat(added) : added;
  return summary;
}

function setDataset(spec) {
  if (spec.kind === 'text') {
    sources = [];
    return session.setText(spec.data, spec.name, JSON.stringify(spec.columns ?? {}));
  }
  if (spec.kind === 'audio') {
    sources = [];
    return session.setAudio(spec.items, spec.classes ?? undefined);
  }
  if (spec.kind === 'series') {
    sources = [];
    return session.setSeries(spec.recordings);
  }
  if (spec.kind === 'transcription') {
    sources = [];
    return session.setTranscripts(spec.files);
  }
  return setImages(spec, Boolean(spec.append) && sources.length > 0);
}

// The warm-up after a model loads, on a GPU only (there the first step would wait on shader
// compilation): it runs while the page sets the data, a later model stops it, training waits
// for it to end.
let warming = null; // {stopped, done}
function warmUp() {
  if (session.device.backend === 'cpu') return;
  const w = { stopped: false };
  // After this call's answer is posted (the warm-up loads its own copy of the model first).
  w.done = new Promise((r) => setTimeout(r, 0))
    .then(() => (w.stopped ? false : session.warmUp(() => w.stopped)))
    .catch((err) => console.warn(`tabtune warm-up: ${err.message ?? err}`));
  warming = w;
}

// The API's model `{kind?, name, weights, config?, tokenizer?, extras?}` as named files.
function loadModel(model) {
  if (warming) warming.stopped = true;
  const files = { ...(model.extras ?? {}), 'model.safetensors': model.weights };
  if (model.config !== undefined) files['config.json'] = model.config;
  if (model.tokenizer !== undefined) files['tokenizer.json'] = model.tokenizer;
  const info = session.loadModel(model.name, model.kind, files);
  kind = info.kind;
  return info;
}

// Core events: checkpoints (after the head phase, after each epoch) go to the API to keep; the
// rest is progress.
function events(reply) {
  return (event) => {
    if (event.kind !== 'checkpoint') return reply({ type: 'progress', event });
    const { phase, epoch, files, recipe, report } = event;
    reply({ type: 'checkpoint', phase, epoch, files, recipe, report });
  };
}

async function call(data, reply) {
  switch (data.type) {
    case 'init':
      await init();
      session = await Session.create(data.device ?? 'auto');
      return session.device;
    case 'load-model': {
      const info = loadModel(data.model);
      warmUp();
      return info;
    }
    case 'load-adapter': {
      if (warming) warming.stopped = true;
      const { name, config, weights } = data.adapter;
      const info = session.loadAdapter(name, config, weights);
      warmUp();
      return info;
    }
    case 'set-dataset':
      return setDataset(data.dataset);
    case 'add-data': {
      const items = data.images.map((source, i) => ({
        label: data.label,
        source,
        name: `${data.label}/${source instanceof Blob && source.name ? source.name : `added-${sources.length + i}.png`}`,
      }));
      return setImages({ items }, sources.length > 0);
    }
    case 'default-recipe':
      return session.defaultRecipe();
    case 'check-recipe':
      return session.checkRecipe(JSON.stringify(data.recipe ?? {}));
    case 'lora-plan':
      return session.loraPlan(JSON.stringify(data.recipe ?? {}));
    case 'train':
    case 'resume': {
      const controller = new AbortController();
      controllers.set(data.id, controller);
      try {
        await warming?.done;
        if (data.type === 'train') return await session.train(JSON.stringify(data.recipe ?? {}), events(reply), controller.signal);
        const { run } = data;
        loadModel(run.base);
        setDataset(run.dataset);
        return await session.resume(run.checkpoint, events(reply), controller.signal);
      } finally {
        controllers.delete(data.id);
      }
    }
    case 'evaluate':
      return session.evaluate();
    case 'memory':
      return session.memory();
    case 'predict': {
      const input = data.input;
      if (kind === 'text') {
        const rows = await session.predictText(Array.isArray(input) ? input : [input]);
        return Array.isArray(input) ? rows : rows[0];
      }
      if (kind === 'audio') return session.predictAudio(input);
      if (kind === 'series') return session.predictSeries(input);
      if (kind === 'transcription') return session.transcribe(input, Boolean(data.original));
      const { width, height, data: pixels } = await decode(input);
      return session.predictImage(width, height, new Uint8Array(pixels.buffer));
    }
    case 'export':
      return session.exportModel(Boolean(data.examples), Boolean(data.adapterOnly));
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
