// The worker owns the wasm core and the device; the page only sends typed messages:
//   page -> worker: {type:'init', device}, {type:'train', recipe, spec},
//                   {type:'finetune', model: url, dataset: {classes, items: [{name, url, label}],
//                    split?}, recipe},
//                   {type:'finetune-text', model: {weights, config, tokenizer (urls), name},
//                    data: url, columns: {text?, label?, per_class?}, recipe}, {type:'cancel'}
//   worker -> page: {type:'ready', device}, {type:'progress', event}, {type:'done', report},
//                   {type:'finetuned', report, model: Uint8Array, config}, {type:'error', message}
import init, { Session } from './pkg/tabtune.js';

let session = null;
let controller = null;
const post = (message) => self.postMessage(message);
const message = (err) => String(err?.message ?? err);

// One image, decoded by the browser only when the core asks for it: never all pixels at once.
// No colour-space conversion or premultiplication, so the pixels are the file's, as natively.
// `source` is a URL, a Blob (a File the user dropped) or an ImageBitmap.
async function decode(source) {
  let blob = source;
  if (!(source instanceof Blob) && !(source instanceof ImageBitmap)) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${source}`);
    blob = await response.blob();
  }
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
  });
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { width, height, data: context.getImageData(0, 0, width, height).data };
}

async function bytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${url}`);
  return new Uint8Array(await response.arrayBuffer());
}

// A text model's three files, fetched: what Session.finetuneText and embedText take.
async function textModelFiles(model) {
  const [weights, tokenizer, config] = await Promise.all([
    bytes(model.weights),
    bytes(model.tokenizer),
    bytes(model.config).then((b) => new TextDecoder().decode(b)),
  ]);
  return { weights, tokenizer, config, name: model.name };
}

// Calls from the FineTuner API (www/tabtune.js) carry an id; every answer echoes it.
const controllers = new Map();
async function api(data) {
  const { id } = data;
  const reply = (message, transfer = []) => self.postMessage({ id, ...message }, transfer);
  const progress = (event) => reply({ type: 'progress', event });
  try {
    switch (data.type) {
      case 'init':
        await init();
        session = await Session.create(data.device ?? 'auto');
        reply({ type: 'result', value: session.device });
        return;
      case 'cancel':
        controllers.get(id)?.abort();
        return;
    }
    if (!session) throw new Error('the device is not ready yet');
    const controller = new AbortController();
    controllers.set(id, controller);
    try {
      switch (data.type) {
        case 'finetune-text': {
          const value = await session.finetuneText(
            data.files, data.data, data.dataName, data.columns, data.recipe, progress, controller.signal,
          );
          reply({ type: 'result', value }, [value.model.buffer]);
          break;
        }
        case 'finetune-images': {
          const { dataset } = data;
          const value = await session.finetuneImages(
            data.weights,
            data.name,
            { classes: dataset.classes, items: dataset.items.map(({ name, label }) => ({ name, label })), split: dataset.split },
            (i) => decode(dataset.items[i].source),
            data.recipe,
            progress,
            controller.signal,
          );
          reply({ type: 'result', value }, [value.model.buffer]);
          break;
        }
        case 'predict-text':
          reply({ type: 'result', value: await session.predictText(data.texts) });
          break;
        case 'predict-image': {
          const { width, height, data: pixels } = await decode(data.image);
          reply({ type: 'result', value: await session.predictImage(width, height, new Uint8Array(pixels.buffer)) });
          break;
        }
        default:
          throw new Error(`unknown call ${data.type}`);
      }
    } finally {
      controllers.delete(id);
    }
  } catch (err) {
    reply({ type: 'error', message: message(err) });
  }
}

self.onmessage = async ({ data }) => {
  if (data.id !== undefined) return api(data);
  try {
    switch (data.type) {
      case 'init':
        await init();
        session = await Session.create(data.device ?? 'auto');
        post({ type: 'ready', device: session.device });
        break;
      case 'train': {
        if (!session) throw new Error('the device is not ready yet');
        controller = new AbortController();
        const report = await session.trainHeadDemo(
          data.recipe,
          data.spec,
          (event) => post({ type: 'progress', event }),
          controller.signal,
        );
        post({ type: 'done', report });
        break;
      }
      case 'finetune': {
        if (!session) throw new Error('the device is not ready yet');
        controller = new AbortController();
        const { dataset } = data;
        const weights = await bytes(data.model);
        const result = await session.finetuneImages(
          weights,
          data.model.split('/').at(-1),
          { classes: dataset.classes, items: dataset.items, split: dataset.split },
          (i) => decode(dataset.items[i].url),
          data.recipe,
          (event) => post({ type: 'progress', event }),
          controller.signal,
        );
        self.postMessage({ type: 'finetuned', ...result }, [result.model.buffer]);
        break;
      }
      case 'finetune-text': {
        if (!session) throw new Error('the device is not ready yet');
        controller = new AbortController();
        const files = await textModelFiles(data.model);
        const table = await bytes(data.data);
        const result = await session.finetuneText(
          files,
          table,
          data.data.split('/').at(-1),
          data.columns ?? {},
          data.recipe,
          (event) => post({ type: 'progress', event }),
          controller.signal,
        );
        self.postMessage({ type: 'finetuned', ...result }, [result.model.buffer]);
        break;
      }
      case 'cancel':
        controller?.abort();
        break;
      default:
        throw new Error(`unknown message type ${data.type}`);
    }
  } catch (err) {
    post({ type: 'error', message: message(err) });
  }
};
