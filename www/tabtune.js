// The embeddable API: a FineTuner runs the wasm core in a dedicated Web Worker (worker.js) and
// exposes promises. Every call is a request with an id; the worker answers with its result,
// progress events, or an error message a person can act on.
//
//   const tuner = await FineTuner.create({ model: 'all-MiniLM-L6-v2' });
//   await tuner.setDataset({ kind: 'text', data: file, name: file.name });
//   const report = await tuner.train({ finetune: null }, { onProgress, signal });
//   await tuner.predict('a gorgeous, witty film');   // [{label, probability}, ...]
//   const { zip } = await tuner.export();
//
//   const speech = await FineTuner.create({ model: 'speech_embedding' });
//   await speech.setDataset({ kind: 'audio', items: [{ label: 'yes', source: wavFile }, ...] });
//   await speech.predict(blob);   // or {samples: Float32Array, rate}
//
//   const har = await FineTuner.create({ model: 'har_conv1d' });
//   await har.setDataset({ kind: 'series', recordings: [{ name: 'walk.csv', group: 'me', text }] });
//   await har.predict({ name: 'now.csv', text });   // per window: class probabilities
//
// Models and runs are kept in the browser's origin-private file system (OPFS), or IndexedDB
// where OPFS is missing: see `Store` below.

let nextId = 1;
const ASSETS = new URL('../assets/', import.meta.url);
const RUN = 'run'; // the pending run's folder in the store
const TEXT_EXTRAS = ['tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'];
// A Whisper folder's companions (exported with it).
const WHISPER_EXTRAS = ['generation_config.json', 'preprocessor_config.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'normalizer.json'];
const extrasOf = (kind) => (kind === 'transcription' ? WHISPER_EXTRAS : TEXT_EXTRAS);
const hasTokenizer = (kind) => kind === 'text' || kind === 'transcription';
const CHUNK = 200; // image items per message to the worker (about 50 ms of the page's time)

export class FineTuner {
  #worker;
  #pending = new Map();

  constructor(worker) {
    this.device = null;
    this.model = null;
    this.#attach(worker);
  }

  #attach(worker) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => {
      const call = this.#pending.get(data.id);
      if (!call) return;
      if (data.type === 'progress') call.onProgress?.(data.event);
      else if (data.type === 'checkpoint') call.onCheckpoint?.(data);
      else {
        this.#pending.delete(data.id);
        if (data.type === 'error') call.reject(new Error(data.message));
        else call.resolve(data.value);
      }
    };
    worker.onerror = (event) => {
      const err = new Error(`the tabtune worker failed: ${event.message ?? 'unknown error'}`);
      for (const call of this.#pending.values()) call.reject(err);
      this.#pending.clear();
    };
  }

  /** Whether `err` is the GPU going away mid-run (the driver reset, the device destroyed). */
  #lostDevice(err) {
    return this.device?.backend === 'webgpu' && /device is poisoned|device was destroyed|device lost|DeviceLost/i.test(String(err?.message ?? err));
  }

  /** After a lost GPU: the run goes on from its last checkpoint in a fresh worker on the CPU
   * backend, with a warning; without a checkpoint the error stands. */
  async #continueOnCpu(err, { onProgress, signal }) {
    const pending = await FineTuner.pendingRun().catch(() => null);
    if (!pending) throw new Error(`${err.message}\n(the GPU was lost before the run's first checkpoint: train again)`);
    const after = pending.epoch ? `epoch ${pending.epoch} of the fine-tuning phase` : 'the head phase';
    onProgress?.({ kind: 'warning', message: `The GPU was lost (${String(err.message).split('\n')[0]}): going on from the checkpoint after ${after}, on the CPU.` });
    this.#worker.terminate();
    this.#attach(new Worker(this.#workerUrl, { type: 'module' }));
    this.device = await this.#call('init', { device: 'cpu' });
    this.model = await this.#call('load-model', { model: this.#files });
    if (this.#adapter) this.model = await this.#call('load-adapter', { adapter: this.#adapter });
    return this.resume({ onProgress, signal });
  }

  /**
   * Start a worker and its device (`device`: 'auto' = WebGPU, else the CPU with the reason in
   * `device.fallback_reason`; 'gpu'; 'cpu'), then load `model` (see tabtune.d.ts).
   */
  static async create({ model, device = 'auto', workerUrl } = {}) {
    if (model === undefined) throw new Error('FineTuner.create needs a model: a bundled name, files, {url} or {saved}');
    const files = await modelFiles(model);
    const url = workerUrl ?? new URL('./worker.js', import.meta.url);
    const tuner = new FineTuner(new Worker(url, { type: 'module' }));
    tuner.#workerUrl = url;
    try {
      tuner.device = await tuner.#call('init', { device });
      tuner.model = await tuner.#call('load-model', { model: files });
    } catch (err) {
      tuner.terminate();
      throw err;
    }
    tuner.#files = files;
    return tuner;
  }

  /**
   * Put a PEFT adapter folder onto the loaded model (`config`: adapter_config.json, `weights`:
   * adapter_model.safetensors, each bytes, a URL or a File): it predicts with the adapter at
   * once when the adapter carries a head, and training goes on from it. Replaces an adapter
   * loaded before; one that does not fit the model is an error and leaves the model as it was.
   */
  async loadAdapter({ config, weights, name = 'adapter' }) {
    const adapter = { name, config: await asText(config), weights: await toBytes(weights) };
    this.model = await this.#call('load-adapter', { adapter });
    this.#adapter = adapter;
    return this.model;
  }

  #files = null;
  #adapter = null;
  #dataset = null;
  #workerUrl = null;

  #call(type, args = {}, { onProgress, onCheckpoint, signal } = {}) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new Error('cancelled'));
        return;
      }
      this.#pending.set(id, { resolve, reject, onProgress, onCheckpoint });
      signal?.addEventListener('abort', () => this.#worker.postMessage({ id, type: 'cancel' }), { once: true });
      this.#worker.postMessage({ id, type, ...args });
    });
  }

  defaultRecipe() {
    return this.#call('default-recipe');
  }

  checkRecipe(recipe = {}) {
    finiteNumbers(recipe);
    return this.#call('check-recipe', { recipe });
  }

  /** What the recipe's adapters (finetune.lora) would train, before training: null without. */
  loraPlan(recipe = {}) {
    finiteNumbers(recipe);
    return this.#call('lora-plan', { recipe });
  }

  /** Replace the dataset. Image items go to the worker in chunks (posting 10,000 Files at
   * once blocks the page for seconds); `onProgress(done, total)` follows them. */
  async setDataset(dataset, { onProgress } = {}) {
    let spec = dataset;
    if (dataset?.kind === 'text') {
      const name = String(dataset.name ?? dataset.data?.name ?? (typeof dataset.data === 'string' ? dataset.data : 'data.csv'));
      spec = { kind: 'text', data: await toBytes(dataset.data), name: name.split('/').at(-1), columns: dataset.columns ?? {} };
    } else if (dataset?.kind === 'image') {
      spec = { ...dataset, items: dataset.items.map((item) => ({ ...item, source: imageSource(item.source ?? item.url) })) };
    } else if (dataset?.kind === 'audio') {
      if (!Array.isArray(dataset.items)) throw new Error('an audio dataset is {kind: "audio", items: [{label, source} | {label, samples, rate}]}');
      const items = [];
      for (const [i, item] of dataset.items.entries()) items.push({ label: String(item.label), ...(await audioClip(item, `clip ${i + 1}`)) });
      spec = { kind: 'audio', classes: dataset.classes, items };
    } else if (dataset?.kind === 'series') {
      if (!Array.isArray(dataset.recordings)) throw new Error('a series dataset is {kind: "series", recordings: [{name, group?, text | data, val?}]}');
      const recordings = [];
      for (const [i, r] of dataset.recordings.entries()) recordings.push(await seriesRecording(r, `recording ${i + 1}.csv`));
      spec = { kind: 'series', recordings };
    } else if (dataset?.kind === 'transcription') {
      if (!Array.isArray(dataset.files)) throw new Error('a transcription dataset is {kind: "transcription", files: [{name, data}]}: a metadata.csv (file_name, transcription) or a .jsonl with the audio files it names, or x.wav beside x.txt');
      const files = [];
      for (const [i, f] of dataset.files.entries()) files.push(await namedBytes(f, `file ${i + 1}`));
      spec = { kind: 'transcription', files };
    } else {
      throw new Error('a dataset is {kind: "image", items}, {kind: "text", data, name}, {kind: "audio", items}, {kind: "series", recordings} or {kind: "transcription", files}');
    }
    let summary;
    if (spec.kind === 'image') {
      const { items } = spec;
      for (let i = 0; i === 0 || i < items.length; i += CHUNK) {
        const chunk = { ...spec, items: items.slice(i, i + CHUNK), append: i > 0 };
        summary = await this.#call('set-dataset', { dataset: chunk });
        onProgress?.(Math.min(i + CHUNK, items.length), items.length);
      }
    } else {
      summary = await this.#call('set-dataset', { dataset: spec });
    }
    this.#dataset = spec;
    return summary;
  }

  async addData(label, images) {
    const summary = await this.#call('add-data', { label: String(label), images: images.map(imageSource) });
    const added = images.map((source) => ({ label: String(label), source: imageSource(source) }));
    this.#dataset = { kind: 'image', items: [...(this.#dataset?.kind === 'image' ? this.#dataset.items : []), ...added] };
    return summary;
  }

  /**
   * Train; a run with a fine-tuning phase leaves a checkpoint after its head phase and after
   * every epoch of its fine-tuning phase, from which resume() continues after a reload.
   */
  async train(recipe = {}, { onProgress, signal } = {}) {
    finiteNumbers(recipe);
    try {
      return await this.#run('train', { recipe }, { base: this.#files, dataset: this.#dataset }, { onProgress, signal });
    } catch (err) {
      if (!this.#lostDevice(err)) throw err;
      return this.#continueOnCpu(err, { onProgress, signal });
    }
  }

  /** Continue the pending run from its last checkpoint. */
  async resume({ onProgress, signal } = {}) {
    const run = await loadRun();
    if (!run) throw new Error('there is no interrupted run to resume');
    let report;
    try {
      report = await this.#run('resume', { run }, { base: run.base, dataset: run.dataset, saved: true }, { onProgress, signal });
    } catch (err) {
      if (!this.#lostDevice(err)) throw err;
      return this.#continueOnCpu(err, { onProgress, signal });
    }
    this.#files = run.base;
    this.#dataset = run.dataset;
    return report;
  }

  // A run whose checkpoints are kept, one after the other, with all resume() needs after a
  // reload (the base model, the data, the recipe); the kept run is removed when it completes.
  async #run(type, args, { base, dataset, saved = false }, { onProgress, signal }) {
    let saving = Promise.resolve();
    // A full store turns checkpoints off for the rest of the run (said once; what a failed
    // write left is removed), and the run goes on.
    let off = false;
    const onCheckpoint = (message) => {
      const fresh = !saved;
      saved = true;
      saving = saving.then(async () => {
        const { phase, epoch } = message;
        if (off) return;
        try {
          await saveRun({ base, dataset, ...message }, fresh);
          onProgress?.({ kind: 'checkpoint', phase, epoch });
        } catch (err) {
          const full = err?.name === 'QuotaExceededError' || /quota/i.test(String(err?.message));
          if (full) {
            off = true;
            await Store.open().then((s) => s.remove(RUN)).catch(() => {});
          }
          const error = full
            ? `the browser's storage for this page is full (${err?.message ?? err}): checkpoints are off for this run, which goes on`
            : String(err?.message ?? err);
          onProgress?.({ kind: 'checkpoint', phase, epoch, error, off: full });
        }
      });
    };
    try {
      const report = await this.#call(type, args, { onProgress, onCheckpoint, signal });
      await saving;
      await Store.open().then((s) => s.remove(RUN)).catch(() => {});
      return report;
    } finally {
      await saving;
    }
  }

  evaluate() {
    return this.#call('evaluate');
  }

  /**
   * Memory in use: `{device: {in_use_bytes, reserved_bytes, allocations} | null, wasm_bytes}` —
   * the GPU memory pool once its free pages are returned (null on the CPU) and the module's
   * linear memory.
   */
  memory() {
    return this.#call('memory');
  }

  async predict(input, options) {
    // Strings are texts for a text model, image URLs for an image model, audio URLs (or
    // files, bytes, {samples, rate}) for an audio model.
    if (this.model?.kind === 'audio') return this.#call('predict', { input: await audioClip(input, 'clip') });
    if (this.model?.kind === 'transcription') {
      // One clip or several (File, bytes, URL, {name, data}, {samples, rate}): the transcript
      // of each; {original: true} asks the loaded model as it came.
      const list = Array.isArray(input) ? input : [input];
      const clips = [];
      for (const [i, c] of list.entries()) clips.push(await clipBytes(c, `clip ${i + 1}.wav`));
      const out = await this.#call('predict', { input: clips, original: Boolean(options?.original) });
      return Array.isArray(input) ? out : out[0];
    }
    if (this.model?.kind === 'series') {
      // One recording or several ({name, text | data}, or CSV text): one prediction each.
      const list = Array.isArray(input) ? input : [input];
      const recordings = [];
      for (const [i, r] of list.entries()) recordings.push(await seriesRecording(typeof r === 'string' ? { text: r } : r, `recording ${i + 1}.csv`));
      const out = await this.#call('predict', { input: recordings });
      return Array.isArray(input) ? out : out[0];
    }
    const text = this.model?.kind === 'text';
    if (text && !(typeof input === 'string' || Array.isArray(input))) throw new Error('a text model predicts strings');
    const value = text ? input : imageSource(input);
    return this.#call('predict', { input: value });
  }

  /** The model as files and a zip. Its report.json holds nothing from the dataset (names,
   * texts, transcripts of examples) unless `examples` is true. */
  async export({ examples = false, adapterOnly = false, signal } = {}) {
    // The core's export is one call: a cancel rejects at once, and the worker's answer, when
    // it comes, is dropped.
    const call = this.#call('export', { examples, adapterOnly });
    const cancelled = new Promise((_, reject) => {
      const cancel = () => reject(new Error('cancelled'));
      if (signal?.aborted) cancel();
      signal?.addEventListener('abort', cancel, { once: true });
    });
    const { files, zip } = await (signal ? Promise.race([call, cancelled]) : call);
    return { files, zip: new Blob([zip], { type: 'application/zip' }) };
  }

  /** Save the model in use (fine-tuned or loaded) in this browser under `name`. */
  async save(name) {
    const { files } = await this.export();
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    const classes = config.id2label
      ? Object.keys(config.id2label).sort((a, b) => a - b).map((k) => config.id2label[k])
      : config.output?.labels ?? [];
    const kind = config.model_type === 'whisper' ? 'transcription' : files['tokenizer.json'] ? 'text' : ({ speech_embedding: 'audio', series: 'series' })[config.architecture] ?? 'image';
    const arch = config.architecture ?? config.model_type ?? this.model?.arch ?? '';
    const label = String(name ?? `${arch}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}`).trim();
    if (!/^[\w.-][\w .-]{0,79}$/.test(label)) throw new Error(`"${label}" is not a usable name: letters, digits, space, . _ - (at most 80)`);
    const store = await Store.open();
    const bytes = Object.values(files).reduce((n, b) => n + b.length, 0);
    const meta = { name: label, kind, arch, classes, saved_at: new Date().toISOString(), bytes, store: store.kind };
    await store.remove(`models/${label}`);
    // The merged model is what loads again; PEFT's adapter folder is for downloads.
    for (const [file, contents] of Object.entries(files)) {
      if (!file.includes('/')) await store.write(`models/${label}/${file}`, contents);
    }
    await store.write(`models/${label}/meta.json`, new TextEncoder().encode(JSON.stringify(meta)));
    return label;
  }

  terminate() {
    this.#worker.terminate();
    for (const call of this.#pending.values()) call.reject(new Error('the FineTuner was terminated'));
    this.#pending.clear();
  }

  /** The models saved in this browser, newest first; one whose stored description cannot be
   * read is listed as `{name, error}` (it can be removed), and the others as they are. */
  static async saved() {
    const store = await Store.open();
    const out = [];
    for (const name of await store.list('models')) {
      try {
        out.push(JSON.parse(new TextDecoder().decode(await store.read(`models/${name}/meta.json`))));
      } catch (err) {
        out.push({ name, saved_at: '', error: `its stored description is unreadable (${err?.message ?? err})` });
      }
    }
    return out.sort((a, b) => (a.saved_at < b.saved_at ? 1 : -1));
  }

  static async remove(name) {
    await (await Store.open()).remove(`models/${name}`);
  }

  static async pendingRun() {
    const store = await Store.open();
    const meta = await store.read(`${RUN}/run.json`).catch(() => null);
    if (!meta) return null;
    const run = JSON.parse(new TextDecoder().decode(meta));
    return { model: run.base.name, kind: run.base.kind, phase: run.phase, epoch: run.epoch, saved_at: run.saved_at, recipe: run.recipe };
  }

  static async discardRun() {
    await (await Store.open()).remove(RUN);
  }

  static async bundled() {
    const response = await fetch(new URL('index.json', ASSETS)).catch(() => null);
    if (!response?.ok) return { models: [], datasets: [] };
    const index = await response.json();
    return { models: index.models ?? [], datasets: index.datasets ?? [] };
  }
}

// ---- model sources -------------------------------------------------------------------------

async function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (typeof value === 'string' || value instanceof URL) {
    const text = String(value);
    // Text with a line break is content; so is '' (as a URL it would name this page).
    if (text.includes('\n') || text === '') return new TextEncoder().encode(text);
    const response = await fetch(new URL(text, location.href)).catch((err) => {
      throw new Error(`cannot fetch ${text}: ${err.message}`);
    });
    if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${text}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  throw new Error(`expected a URL, bytes or a File, got ${value === null ? 'null' : typeof value}`);
}

const asText = async (value) =>
  typeof value === 'string' && value.trimStart().startsWith('{') ? value : new TextDecoder().decode(await toBytes(value));

// A recording as the worker takes it: `{name, group, text, val}` (CSV/TSV/JSONL text; `data`
// may be a File, bytes or a URL instead).
async function seriesRecording(r, fallback) {
  const name = String(r?.name ?? (r?.data instanceof Blob ? r.data.name : undefined) ?? fallback);
  const text = typeof r?.text === 'string' ? r.text : new TextDecoder().decode(await toBytes(r?.data));
  return { name, group: String(r?.group ?? name), text, val: Boolean(r?.val) };
}

// A file as the worker takes it: `{name, bytes}` (a File, bytes, a URL, or {name, data}).
async function namedBytes(f, fallback) {
  const data = f?.data ?? f?.source ?? f;
  const name = String(f?.name ?? (data instanceof Blob ? data.name : undefined) ?? (typeof data === 'string' ? data.split('/').at(-1) : undefined) ?? fallback);
  return { name, bytes: await toBytes(data) };
}

// A clip to transcribe as the worker takes it: a file's bytes, or recorded samples as a WAV.
async function clipBytes(c, fallback) {
  if (c instanceof Float32Array || c?.samples !== undefined) {
    const samples = c instanceof Float32Array ? c : c.samples;
    return { name: c?.name ?? fallback, bytes: wav16(samples, c?.rate ?? 16000) };
  }
  return namedBytes(c, fallback);
}

/** Throw naming the first NaN or infinite number in `recipe` (JSON would turn it into null,
 * and the core would see a null where a number goes). */
function finiteNumbers(value, path = '') {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`recipe: ${path}: ${value} is not a finite number`);
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) finiteNumbers(inner, path ? `${path}.${key}` : key);
  }
}

// Mono float samples as a 16-bit PCM WAV file.
export function wav16(samples, rate) {
  const out = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => [...s].forEach((ch, i) => out.setUint8(at + i, ch.charCodeAt(0)));
  text(0, 'RIFF');
  out.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVEfmt ');
  out.setUint32(16, 16, true);
  out.setUint16(20, 1, true);
  out.setUint16(22, 1, true);
  out.setUint32(24, rate, true);
  out.setUint32(28, rate * 2, true);
  out.setUint16(32, 2, true);
  out.setUint16(34, 16, true);
  text(36, 'data');
  out.setUint32(40, samples.length * 2, true);
  samples.forEach((v, i) => out.setInt16(44 + i * 2, Math.max(-32768, Math.min(32767, Math.round(v * 32767))), true));
  return new Uint8Array(out.buffer);
}

// An audio clip as the worker takes it: `{name, bytes}` of a file (decoded in the core, the
// same code as the CLI's) or `{name, samples, rate}` of recorded mono samples.
async function audioClip(item, fallback) {
  if (item instanceof Float32Array) return { name: fallback, samples: item, rate: 16000 };
  if (item?.samples !== undefined) {
    if (!(item.samples instanceof Float32Array)) throw new Error(`${item.name ?? fallback}: samples are a Float32Array`);
    return { name: item.name ?? fallback, samples: item.samples, rate: item.rate ?? 16000 };
  }
  const source = item?.source ?? item?.url ?? item;
  const name = item?.name ?? (source instanceof Blob ? source.name : typeof source === 'string' ? source.split('/').at(-1) : undefined) ?? fallback;
  return { name, bytes: await toBytes(source) };
}

function imageSource(source) {
  if (source instanceof Blob || (typeof ImageBitmap !== 'undefined' && source instanceof ImageBitmap)) return source;
  if (source === undefined || source === null) throw new Error('an image item has no source');
  return new URL(String(source), location.href).href;
}

/** A Hugging Face repository URL (https://huggingface.co/owner/name[/tree/rev]) as the base of its files. */
export function resolveModelUrl(url) {
  const u = new URL(url, location.href);
  if (/(^|\.)huggingface\.co$/.test(u.hostname)) {
    const [owner, name, kind, rev] = u.pathname.split('/').filter(Boolean);
    if (!owner || !name) throw new Error(`${url}: a Hugging Face model URL is https://huggingface.co/owner/name`);
    return `https://huggingface.co/${owner}/${name}/resolve/${kind === 'tree' && rev ? rev : 'main'}/`;
  }
  return u.href.endsWith('/') ? u.href : `${u.href}/`;
}

async function optional(url) {
  const response = await fetch(url).catch(() => null);
  return response?.ok ? new Uint8Array(await response.arrayBuffer()) : null;
}

// The files of a model source, as the worker takes them:
// {kind?, name, weights: Uint8Array, config?: string, tokenizer?: Uint8Array, extras?: {name: bytes}}.
async function modelFiles(model) {
  if (typeof model === 'string') {
    const { models } = await FineTuner.bundled();
    const entry = models.find((m) => m.name === model);
    if (!entry) throw new Error(`no bundled model "${model}"; bundled: ${models.map((m) => m.name).join(', ') || 'none (run make assets)'}`);
    const base = new URL(`${entry.path.replace(/^assets\//, '')}/`, ASSETS);
    const listed = (file) => (entry.files ?? []).some((f) => f.endsWith(`/${file}`));
    const files = { kind: entry.kind, name: entry.name, weights: await toBytes(new URL(entry.weights, base)) };
    if (listed('config.json')) files.config = await asText(new URL('config.json', base));
    if (hasTokenizer(entry.kind)) {
      files.tokenizer = await toBytes(new URL('tokenizer.json', base));
      files.extras = {};
      for (const extra of extrasOf(entry.kind).filter(listed)) files.extras[extra] = await toBytes(new URL(extra, base));
    }
    return imageConfigOnlyIfFinetuned(files);
  }
  if (model?.saved) {
    const store = await Store.open();
    const dir = `models/${model.saved}`;
    const meta = await store.read(`${dir}/meta.json`).catch(() => {
      throw new Error(`no saved model "${model.saved}" in this browser`);
    });
    const { kind } = JSON.parse(new TextDecoder().decode(meta));
    const files = {
      kind,
      name: model.saved,
      weights: await store.read(`${dir}/model.safetensors`),
      config: new TextDecoder().decode(await store.read(`${dir}/config.json`)),
    };
    if (hasTokenizer(kind)) {
      files.tokenizer = await store.read(`${dir}/tokenizer.json`);
      files.extras = {};
      for (const extra of extrasOf(kind)) {
        const bytes = await store.read(`${dir}/${extra}`).catch(() => null);
        if (bytes) files.extras[extra] = bytes;
      }
    }
    return files;
  }
  if (model?.url) {
    const base = resolveModelUrl(model.url);
    const weights = await toBytes(new URL('model.safetensors', base));
    const config = await optional(new URL('config.json', base));
    const tokenizer = await optional(new URL('tokenizer.json', base));
    const files = { name: base.replace(/\/(resolve\/[^/]+\/)?$/, '').split('/').at(-1), weights };
    if (config) files.config = new TextDecoder().decode(config);
    if (tokenizer) {
      files.kind = files.config && JSON.parse(files.config).model_type === 'whisper' ? 'transcription' : 'text';
      files.tokenizer = tokenizer;
      files.extras = {};
      for (const extra of extrasOf(files.kind)) {
        const bytes = await optional(new URL(extra, base));
        if (bytes) files.extras[extra] = bytes;
      }
    }
    return hasTokenizer(files.kind) ? files : imageConfigOnlyIfFinetuned(files);
  }
  if (model?.weights) {
    const fromUrl = typeof model.weights === 'string' ? model.weights.split('/').filter(Boolean).at(-2) : undefined;
    const files = { kind: model.kind, name: model.name ?? model.weights?.name ?? fromUrl ?? 'model', weights: await toBytes(model.weights) };
    if (model.config) files.config = await asText(model.config);
    if (model.tokenizer) files.tokenizer = await toBytes(model.tokenizer);
    if (model.extras) {
      files.extras = {};
      for (const [name, value] of Object.entries(model.extras)) files.extras[name] = await toBytes(value);
    }
    return files;
  }
  throw new Error('a model is a bundled name, {kind, weights, config?, tokenizer?}, {url} or {saved}');
}

// An image checkpoint's config.json matters only when it names fine-tuned classes (the
// bundled ImageNet configs are tabtune's own notes, not a classifier's labels).
function imageConfigOnlyIfFinetuned(files) {
  // (A series model's config.json is its layers, Whisper's its shape: always kept.)
  if (!hasTokenizer(files.kind) && files.kind !== 'series' && files.config && !JSON.parse(files.config).id2label) delete files.config;
  return files;
}

// ---- the store: OPFS, else IndexedDB -------------------------------------------------------

class Store {
  static #opened = null;

  static open() {
    Store.#opened ??= Store.#choose();
    return Store.#opened;
  }

  static async #choose() {
    try {
      const root = await navigator.storage.getDirectory();
      const dir = await root.getDirectoryHandle('tabtune', { create: true });
      const probe = await dir.getFileHandle('.probe', { create: true });
      if (typeof probe.createWritable !== 'function') throw new Error('no createWritable');
      return new OpfsStore(dir);
    } catch {
      return new IdbStore(await IdbStore.db());
    }
  }
}

class OpfsStore {
  kind = 'opfs';
  constructor(root) {
    this.root = root;
  }
  async #dir(parts, create) {
    let dir = this.root;
    for (const part of parts) dir = await dir.getDirectoryHandle(part, { create });
    return dir;
  }
  async write(path, bytes) {
    const parts = path.split('/');
    const dir = await this.#dir(parts.slice(0, -1), true);
    const writable = await (await dir.getFileHandle(parts.at(-1), { create: true })).createWritable();
    await writable.write(bytes);
    await writable.close();
  }
  async read(path) {
    const parts = path.split('/');
    const dir = await this.#dir(parts.slice(0, -1), false);
    const file = await (await dir.getFileHandle(parts.at(-1))).getFile();
    return new Uint8Array(await file.arrayBuffer());
  }
  async list(path) {
    const dir = await this.#dir(path.split('/'), false).catch(() => null);
    const names = [];
    if (dir) for await (const [name, handle] of dir.entries()) if (handle.kind === 'directory') names.push(name);
    return names;
  }
  async remove(path) {
    const parts = path.split('/');
    const dir = await this.#dir(parts.slice(0, -1), false).catch(() => null);
    await dir?.removeEntry(parts.at(-1), { recursive: true }).catch(() => {});
  }
}

class IdbStore {
  kind = 'indexeddb';
  constructor(db) {
    this.db = db;
  }
  static db() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open('tabtune', 1);
      request.onupgradeneeded = () => request.result.createObjectStore('files');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(new Error(`no browser storage: ${request.error?.message}`));
    });
  }
  #tx(mode, run) {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction('files', mode);
      const result = run(tx.objectStore('files'));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(tx.error);
    });
  }
  write(path, bytes) {
    return this.#tx('readwrite', (s) => s.put(bytes, path));
  }
  async read(path) {
    const value = await this.#tx('readonly', (s) => s.get(path));
    if (value === undefined) throw new Error(`${path} is not stored`);
    return value;
  }
  async list(path) {
    const keys = await this.#tx('readonly', (s) => s.getAllKeys(IDBKeyRange.bound(`${path}/`, `${path}/\uffff`)));
    return [...new Set(keys.map((k) => k.slice(path.length + 1).split('/')[0]))];
  }
  remove(path) {
    return this.#tx('readwrite', (s) => s.delete(IDBKeyRange.bound(`${path}/`, `${path}/\uffff`)));
  }
}

// ---- the pending run ------------------------------------------------------------------------

// A run's checkpoint with all it needs to go on: the base model's files, the data (text tables
// as bytes; image items as URLs, or their files copied into the store), the recipe and the
// report so far. `fresh`: the run's first checkpoint (the base and the data are written);
// later ones only add their files, each in a folder of its own that run.json then points to,
// so a reload mid-write still finds the last whole checkpoint.
async function saveRun({ base, dataset, phase, epoch, files, recipe, report }, fresh) {
  const store = await Store.open();
  const enc = (value) => new TextEncoder().encode(JSON.stringify(value));
  let meta;
  if (fresh) {
    await store.remove(RUN);
    meta = { generation: 0, ...(await saveInputs(store, base, dataset)) };
  } else {
    meta = JSON.parse(new TextDecoder().decode(await store.read(`${RUN}/run.json`)));
  }
  const previous = meta.checkpoint;
  const folder = `checkpoint-${(meta.generation += 1)}`;
  for (const [name, bytes] of Object.entries(files)) await store.write(`${RUN}/${folder}/${name}`, bytes);
  Object.assign(meta, { phase, epoch: epoch ?? null, saved_at: new Date().toISOString(), recipe, report, checkpoint: folder, files: Object.keys(files) });
  await store.write(`${RUN}/run.json`, enc(meta));
  if (previous) await store.remove(`${RUN}/${previous}`);
}

// The base model and the data of a run, into the store: what run.json says of them.
async function saveInputs(store, base, dataset) {
  await store.write(`${RUN}/base.safetensors`, base.weights);
  if (base.tokenizer) await store.write(`${RUN}/tokenizer.json`, base.tokenizer);
  let data;
  if (dataset.kind === 'text') {
    await store.write(`${RUN}/data`, dataset.data);
    data = { ...dataset, data: null };
  } else if (dataset.kind === 'series') {
    // Recordings are text: run.json keeps them as they are.
    data = dataset;
  } else if (dataset.kind === 'transcription') {
    const names = [];
    for (const [i, f] of dataset.files.entries()) {
      await store.write(`${RUN}/files/${i}`, f.bytes);
      names.push(f.name);
    }
    data = { kind: 'transcription', names };
  } else if (dataset.kind === 'audio') {
    const items = [];
    for (const [i, item] of dataset.items.entries()) {
      const raw = item.bytes ?? new Uint8Array(item.samples.buffer, item.samples.byteOffset, item.samples.byteLength);
      await store.write(`${RUN}/audio/${i}`, raw);
      items.push({ name: item.name, label: item.label, rate: item.rate, recorded: item.samples !== undefined });
    }
    data = { ...dataset, items };
  } else {
    const items = [];
    for (const [i, item] of dataset.items.entries()) {
      if (item.source instanceof Blob) {
        await store.write(`${RUN}/images/${i}`, new Uint8Array(await item.source.arrayBuffer()));
        items.push({ ...item, name: item.name ?? item.source.name, source: null, stored: i });
      } else {
        items.push(item);
      }
    }
    data = { ...dataset, items };
  }
  const extras = Object.keys(base.extras ?? {});
  for (const name of extras) await store.write(`${RUN}/extras/${name}`, base.extras[name]);
  return { base: { kind: base.kind, name: base.name, config: base.config ?? null, extras }, dataset: data };
}

async function loadRun() {
  const store = await Store.open();
  const raw = await store.read(`${RUN}/run.json`).catch(() => null);
  if (!raw) return null;
  const meta = JSON.parse(new TextDecoder().decode(raw));
  if (!meta.files) throw new Error('the saved run is from an older tabtune that kept no epoch checkpoints: discard it and train again');
  const base = { ...meta.base, weights: await store.read(`${RUN}/base.safetensors`) };
  if (base.config === null) delete base.config;
  if (hasTokenizer(base.kind)) base.tokenizer = await store.read(`${RUN}/tokenizer.json`);
  const extras = {};
  for (const name of meta.base.extras ?? []) extras[name] = await store.read(`${RUN}/extras/${name}`);
  base.extras = extras;
  let dataset = meta.dataset;
  if (dataset.kind === 'text') {
    dataset = { ...dataset, data: await store.read(`${RUN}/data`) };
  } else if (dataset.kind === 'series') {
    // As saved.
  } else if (dataset.kind === 'transcription') {
    const files = [];
    for (const [i, name] of dataset.names.entries()) files.push({ name, bytes: await store.read(`${RUN}/files/${i}`) });
    dataset = { kind: 'transcription', files };
  } else if (dataset.kind === 'audio') {
    const items = [];
    for (const [i, { name, label, rate, recorded }] of dataset.items.entries()) {
      const raw = await store.read(`${RUN}/audio/${i}`);
      items.push(recorded ? { name, label, rate, samples: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) } : { name, label, bytes: raw });
    }
    dataset = { ...dataset, items };
  } else {
    const items = [];
    for (const item of dataset.items) {
      if (item.stored === undefined) items.push(item);
      else items.push({ ...item, source: new Blob([await store.read(`${RUN}/images/${item.stored}`)]) });
    }
    dataset = { ...dataset, items };
  }
  return {
    base,
    dataset,
    recipe: meta.recipe,
    report: meta.report,
    checkpoint: Object.fromEntries(
      await Promise.all(meta.files.map(async (name) => [name, await store.read(`${RUN}/${meta.checkpoint}/${name}`)])),
    ),
  };
}
