// The embeddable API: a FineTuner runs the wasm core in a dedicated Web Worker and exposes
// promises. Every call is a request with an id; the worker answers with its result, its
// progress events, or an error message a person can act on.
//
//   const tuner = await FineTuner.create({ device: 'auto' });
//   tuner.device            // {backend: 'webgpu' | 'cpu', adapter, fallback_reason}
//   const { report } = await tuner.finetuneText({ model, data, columns, recipe, onProgress, signal });
//   await tuner.predictText(['a gorgeous movie'])   // [[{label, probability}, ...]]
//   await tuner.terminate();

let nextId = 1;

export class FineTuner {
  #worker;
  #pending = new Map();

  constructor(worker) {
    this.#worker = worker;
    this.device = null;
    worker.onmessage = ({ data }) => {
      const call = this.#pending.get(data.id);
      if (!call) return;
      if (data.type === 'progress') {
        call.onProgress?.(data.event);
      } else {
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

  /**
   * Start a worker and its compute device: `device` is 'auto' (WebGPU, else the CPU with the
   * reason in `device.fallback_reason`), 'gpu' or 'cpu'. `workerUrl` overrides where the
   * worker script is (default: worker.js beside this module).
   */
  static async create({ device = 'auto', workerUrl } = {}) {
    const url = workerUrl ?? new URL('./worker.js', import.meta.url);
    const tuner = new FineTuner(new Worker(url, { type: 'module' }));
    tuner.device = await tuner.#call('init', { device });
    return tuner;
  }

  #call(type, args = {}, { onProgress, signal } = {}) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new Error('cancelled'));
        return;
      }
      this.#pending.set(id, { resolve, reject, onProgress });
      signal?.addEventListener('abort', () => this.#worker.postMessage({ id, type: 'cancel' }), {
        once: true,
      });
      this.#worker.postMessage({ id, type, ...args });
    });
  }

  /**
   * Fine-tune a text model. `model`: `{weights, config, tokenizer}` as URLs or bytes (config
   * may be its JSON text); `data`: a CSV/TSV/JSONL file as a URL, bytes, a File or a string,
   * with `name` telling its format; `columns`: `{text?, label?, per_class?}`; `recipe`: fields
   * over the text defaults. Resolves to `{report, model: Uint8Array, config: string}`.
   */
  async finetuneText({ model, data, name, columns = {}, recipe = {}, onProgress, signal }) {
    const files = await textModelFiles(model);
    const bytes = await toBytes(data);
    const dataName = name ?? (typeof data === 'string' && !data.includes('\n') ? data : data?.name ?? 'data.csv');
    return this.#call(
      'finetune-text',
      { files, data: bytes, dataName: String(dataName).split('/').at(-1), columns, recipe },
      { onProgress, signal },
    );
  }

  /**
   * Fine-tune an image model (`weights`: safetensors as a URL or bytes) on `dataset`:
   * `{classes, items: [{name, label, source}], split?: {train, val}}` where each `source` is a
   * URL or a Blob/File, decoded in the worker one batch at a time. Resolves like finetuneText
   * (the model under the architecture's own key names).
   */
  async finetuneImages({ weights, name = 'model.safetensors', dataset, recipe = {}, onProgress, signal }) {
    const items = dataset.items.map(({ name: n, label, source, url }) => {
      const s = source ?? url;
      return { name: n, label, source: s instanceof Blob ? s : new URL(String(s), location.href).href };
    });
    return this.#call(
      'finetune-images',
      { weights: await toBytes(weights), name, dataset: { ...dataset, items }, recipe },
      { onProgress, signal },
    );
  }

  /** Class probabilities of each text under the last fine-tuned text model. */
  predictText(texts) {
    return this.#call('predict-text', { texts: Array.isArray(texts) ? texts : [texts] });
  }

  /** Class probabilities of one image (ImageBitmap, Blob, File or URL), decoded in the worker. */
  predictImage(image) {
    const source =
      image instanceof Blob || image instanceof ImageBitmap ? image : new URL(String(image), location.href).href;
    return this.#call('predict-image', { image: source });
  }

  /** Stop the worker; pending calls are rejected. */
  terminate() {
    this.#worker.terminate();
    for (const call of this.#pending.values()) call.reject(new Error('the FineTuner was terminated'));
    this.#pending.clear();
  }
}

async function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (typeof value === 'string' || value instanceof URL) {
    const text = String(value);
    if (text.includes('\n')) return new TextEncoder().encode(text);
    const response = await fetch(text);
    if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${text}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  throw new Error(`expected a URL, bytes or a File, got ${typeof value}`);
}

async function textModelFiles(model) {
  if (!model?.weights || !model?.config || !model?.tokenizer) {
    throw new Error('a text model needs {weights, config, tokenizer} (URLs or bytes)');
  }
  const [weights, tokenizer, config] = await Promise.all([
    toBytes(model.weights),
    toBytes(model.tokenizer),
    typeof model.config === 'string' && model.config.trimStart().startsWith('{')
      ? model.config
      : toBytes(model.config).then((b) => new TextDecoder().decode(b)),
  ]);
  return { weights, tokenizer, config, name: model.name ?? 'model' };
}
