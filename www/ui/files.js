// Files the person picks or drops: folders walked lazily (never reading pixels: a folder of
// 10,000 images only becomes a list of File handles), model files told apart by name.

const IMAGE_EXT = /\.(png|jpe?g|gif|bmp|webp|avif)$/i;
const TABLE_EXT = /\.(csv|tsv|jsonl|ndjson)$/i;
const WEIGHTS_EXT = /\.(safetensors|pth|pt|bin)$/i;
const TEXT_EXT = /\.txt$/i;
const AUDIO_EXT = /\.(wav|wave|mp3|ogg|oga|flac)$/i;

export const isImage = (file, path = file.name) =>
  IMAGE_EXT.test(path) || (file.type?.startsWith('image/') ?? false);
export const isTable = (path) => TABLE_EXT.test(path);
export const isWeights = (path) => WEIGHTS_EXT.test(path);
const hidden = (path) => path.split('/').some((part) => part.startsWith('.') || part === '__MACOSX');

const natural = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
export const byPath = (a, b) => natural.compare(a.path, b.path);

/** Files of an <input type=file> as {file, path}; webkitdirectory inputs give relative paths. */
export function fromInput(input) {
  return [...(input.files ?? [])].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/**
 * The entries of a drop, taken synchronously (a DataTransfer is emptied once the event
 * returns). Then `walkEntries` reads them.
 */
export function dropEntries(dataTransfer) {
  const entries = [];
  const loose = [];
  for (const item of dataTransfer.items ?? []) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const file = item.getAsFile();
      if (file) loose.push({ file, path: file.name });
    }
  }
  if (!entries.length && !loose.length) {
    for (const file of dataTransfer.files ?? []) loose.push({ file, path: file.name });
  }
  return { entries, loose };
}

/**
 * Walk dropped entries (files and directories, recursively) into [{file, path}], a
 * directory's entries read in batches as the browser hands them out. `onCount(n)` reports
 * progress; awaiting between batches keeps the page responsive.
 */
export async function walkEntries(entries, { onCount } = {}) {
  const out = [];
  const pending = [];
  const queue = entries.map((entry) => ({ entry, prefix: '' }));
  const fileOf = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));
  const flush = async () => {
    const batch = pending.splice(0);
    const files = await Promise.all(batch.map(({ entry }) => fileOf(entry).catch(() => null)));
    files.forEach((file, i) => file && out.push({ file, path: batch[i].path }));
    onCount?.(out.length);
  };
  while (queue.length) {
    const { entry, prefix } = queue.shift();
    const path = prefix + entry.name;
    if (hidden(entry.name)) continue;
    if (entry.isFile) {
      pending.push({ entry, path });
      if (pending.length >= 256) await flush();
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) queue.push({ entry: child, prefix: `${path}/` });
      }
    }
  }
  await flush();
  return out;
}

/**
 * Image items from files with relative paths: the class is the folder right under the root
 * (`root/cat/1.jpg` -> cat; with several class folders dropped at once, `cat/1.jpg` -> cat).
 * Files not in a class folder and non-images are counted, not used.
 */
export function imageItems(files) {
  return labelled(files, (f) => isImage(f.file, f.path));
}

/** Like imageItems for audio files (WAV, MP3, OGG/Vorbis, FLAC). */
export function audioItems(files) {
  return labelled(files, (f) => AUDIO_EXT.test(f.path));
}

/** Like imageItems for .txt files (a text dataset as a folder). */
export function textFiles(files) {
  return labelled(files, (f) => TEXT_EXT.test(f.path));
}

function labelled(files, keep) {
  const visible = files.filter((f) => !hidden(f.path));
  const parts = visible.map((f) => f.path.split('/').filter(Boolean));
  // One root folder around everything (an input with webkitdirectory always has one).
  const roots = new Set(parts.map((p) => (p.length > 1 ? p[0] : '')));
  const deep = visible.filter((f, i) => parts[i].length >= 3 && keep(f)).length;
  const kept = visible.filter(keep).length;
  const strip = roots.size === 1 && !roots.has('') && deep * 2 > kept ? 1 : 0;
  const items = [];
  let ignored = 0;
  visible.forEach((f, i) => {
    const rel = parts[i].slice(strip);
    if (rel.length < 2 || !keep(f)) {
      ignored += 1;
      return;
    }
    items.push({ label: rel[0], source: f.file, name: rel.join('/'), path: rel.join('/') });
  });
  items.sort(byPath);
  for (const item of items) delete item.path;
  return { items, ignored };
}

/** A text dataset from a folder of class folders of .txt files, as a JSONL Blob. */
export async function textFolderToJsonl(items, { onCount } = {}) {
  const lines = [];
  for (let i = 0; i < items.length; i += 64) {
    const chunk = items.slice(i, i + 64);
    const texts = await Promise.all(chunk.map((it) => it.source.text()));
    chunk.forEach((it, j) => {
      const text = texts[j].trim();
      if (text) lines.push(JSON.stringify({ text, label: it.label }));
    });
    onCount?.(Math.min(i + 64, items.length));
  }
  return new Blob([lines.join('\n') + '\n'], { type: 'application/x-ndjson' });
}

/**
 * A ModelSource from picked or dropped model files: text when a tokenizer.json is among them.
 * Returns {source, name} or throws with what is missing.
 */
export function modelFromFiles(files) {
  const visible = files.filter((f) => !hidden(f.path));
  const depth = (f) => f.path.split('/').length;
  const shallow = (pred) => visible.filter(pred).sort((a, b) => depth(a) - depth(b))[0];
  const base = (f) => f.path.split('/').at(-1);
  const weights =
    shallow((f) => /\.safetensors$/i.test(f.path)) ?? shallow((f) => isWeights(f.path));
  if (!weights) throw new Error('no weights among these files: add a .safetensors or .pth file');
  const config = shallow((f) => base(f).toLowerCase() === 'config.json');
  const tokenizer = shallow((f) => base(f).toLowerCase() === 'tokenizer.json');
  const root = visible.every((f) => f.path.includes('/')) ? visible[0].path.split('/')[0] : null;
  const name = (root ?? base(weights).replace(/\.[^.]+$/, '')).replace(/[^\w.-]+/g, '_') || 'model';
  if (tokenizer) {
    if (!config) throw new Error('a text model needs its config.json next to tokenizer.json');
    const used = new Set([weights, config, tokenizer]);
    const extras = {};
    const rootPrefix = root ? `${root}/` : '';
    for (const f of visible) {
      if (used.has(f) || isWeights(f.path)) continue;
      extras[f.path.startsWith(rootPrefix) ? f.path.slice(rootPrefix.length) : f.path] = f.file;
    }
    return {
      name,
      source: { kind: 'text', weights: weights.file, config: config.file, tokenizer: tokenizer.file, extras, name },
    };
  }
  // With a config.json the core tells the kind from the files (a series model's config holds
  // its layers); weights alone are an image model's.
  const source = config ? { weights: weights.file, config: config.file, name } : { kind: 'image', weights: weights.file, name };
  return { name, source };
}

/** What a set of dropped files most likely is: 'model', 'table' or 'folder'. */
export function classifyDrop(files) {
  if (files.some((f) => isWeights(f.path))) return 'model';
  if (files.length === 1 && isTable(files[0].path)) return 'table';
  return 'folder';
}
