// Step 1b: the data (bundled sets, folders, tables, images by hand or webcam, drops).
import { $, el, number, renderSummary } from '../ui/render.js';
import { fromInput, dropEntries, walkEntries, imageItems, audioItems, textFiles, textFolderToJsonl, classifyDrop, isImage } from '../ui/files.js';
import { startCamera, stopCamera, grabFrame, cameraOn } from '../ui/camera.js';
import { Mic } from '../ui/mic.js';
import { audioThumb } from '../ui/wave.js';
import { fail, guarded, say, state } from './state.js';
import { loadFromFiles } from './model.js';
import { onProgress, validateRecipe } from './train.js';
import { tryImage } from './try.js';
import { seriesDataset } from './motion.js';
import { speechDataset, suggestSentences } from './speech.js';
import { update } from '../app.js';

// ---------------------------------------------------------------- dataset

export function fillDatasetSelect(reset) {
  const select = $('dataset-select');
  const previous = select.value;
  const kind = state.model?.kind;
  select.replaceChildren(el('option', { value: '' }, 'Choose examples…'));
  const group = el('optgroup', { label: 'Bundled' });
  for (const d of state.bundled.datasets.filter((d) => d.kind === kind)) {
    const counts = Object.values(d.counts ?? {});
    const total = counts.reduce((a, b) => a + b, 0) || (d.train ?? 0) + (d.val ?? 0);
    const classes = d.classes?.length ?? counts.length;
    const unit = { text: 'texts', audio: 'clips', series: 'samples', transcription: 'clips' }[d.kind] ?? 'images';
    group.append(el('option', { value: d.name },
      `${d.name}${classes ? ` — ${classes} classes` : ''}${total ? `, ${total.toLocaleString()} ${unit}` : ''}`));
  }
  if (group.children.length) select.append(group);
  select.append(el('option', { value: 'files' }, kind === 'text' ? 'Your own table or folder…' : 'Your own folder…'));
  if (!reset && [...select.options].some((o) => o.value === previous)) select.value = previous;
  else {
    select.value = '';
    state.base = null;
    state.added = [];
    state.columns = {};
    setSummary(null);
  }
  $('dataset-files-panel').hidden = select.value !== 'files';
}

// An option's value is the dataset's name in bundled() ('' and 'files' are the other two).
export const bundledDataset = (value) => state.bundled.datasets.find((d) => d.name === value);

export async function onDatasetSelect() {
  const value = $('dataset-select').value;
  $('dataset-files-panel').hidden = value !== 'files';
  if (value === 'files') {
    const folder = fromInput($('dataset-folder'));
    const table = $('dataset-file').files?.[0];
    if (!folder.length && !table) {
      state.base = null;
      state.columns = {};
      setSummary(null, 'Pick a folder or a table file, or drop it on the drop zone.');
    }
    return;
  }
  if (!value) {
    state.base = null;
    state.columns = {};
    if (state.added.length) return applyDataset();
    setSummary(null);
    return;
  }
  const d = bundledDataset(value);
  if (!d) return;
  state.columns = {};
  dropAdded();
  if (d.kind === 'text') {
    const path = d.path ?? d.files?.[0];
    state.base = { kind: 'text', data: new URL(path, location.href).href, name: path.split('/').at(-1) };
  } else if (d.kind === 'transcription') {
    // An audiofolder: every file under its relative path (metadata.csv names the clips).
    const root = String(d.path ?? '').replace(/\/$/, '');
    const files = (d.files ?? []).filter((p) => /\.(csv|jsonl|txt|wav|mp3|ogg|flac)$/i.test(p) && !/README/i.test(p)).map((path) => ({
      name: root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path,
      url: new URL(path, location.href).href,
    }));
    state.base = { kind: 'transcription', files, name: d.name };
    suggestTranscripts(files.find((f) => f.name === 'train/metadata.csv')?.url);
  } else if (d.kind === 'series') {
    // Recordings (CSV) in folders: the folder is the person or device, or (groups: 'split')
    // the set's own train/ and test/ split, test/ then being the validation set.
    const root = String(d.path ?? '').replace(/\/$/, '');
    const recordings = (d.files ?? []).filter((p) => /\.(csv|tsv|jsonl)$/i.test(p)).map((path) => {
      const rel = root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
      const parts = rel.split('/');
      const group = parts.length > 1 ? parts.slice(0, -1).join('/') : rel;
      const val = d.groups === 'split' && parts[0] === 'test';
      return { name: rel, group: d.groups === 'split' ? rel : group, url: new URL(path, location.href).href, val };
    });
    state.base = { kind: 'series', recordings, name: d.name };
  } else {
    const root = String(d.path ?? '').replace(/\/$/, '');
    const items = (d.files ?? []).map((path) => {
      const rel = root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
      const parts = rel.split('/');
      return { label: parts.length > 1 ? parts[0] : parts[0].replace(/\..*$/, ''), source: new URL(path, location.href).href, name: rel };
    });
    state.base = { kind: d.kind === 'audio' ? 'audio' : 'image', items, name: d.name };
  }
  await applyDataset();
}

/** A new dataset replaces the images added by hand (as setDataset replaces the data). */
export function dropAdded() {
  if (!state.added.length) return;
  const n = state.added.length;
  state.added = [];
  say(`The ${n} ${n === 1 ? 'image' : 'images'} added by hand were replaced by the new dataset.`);
}

/** At most `n` items per label, the first ones in file order. */
export function limitPerClass(items, n) {
  if (!n) return items;
  const seen = new Map();
  return items.filter((item) => {
    const k = String(item.label);
    const c = seen.get(k) ?? 0;
    seen.set(k, c + 1);
    return c < n;
  });
}

/** The per-class limit: a whole number, or null for all; undefined when the field is wrong. */
export function perClass() {
  const raw = $('per-class').value.trim();
  if (!raw) return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    say('“At most per class” is a whole number above 0, or empty for all examples.', { error: true });
    return undefined;
  }
  return n;
}

/** Give the current dataset (with the per-class limit and text columns) to the tuner. */
export async function applyDataset() {
  const tuner = state.tuner;
  if (!tuner) return;
  const n = perClass();
  if (n === undefined) return;
  state.appliedPerClass = $('per-class').value.trim();
  const token = ++state.dataToken;
  let dataset;
  if (state.base?.kind === 'text') {
    const columns = { ...state.columns };
    if (n) columns.per_class = n;
    dataset = { kind: 'text', data: state.base.data, name: state.base.name, columns };
  } else if (state.model?.kind === 'transcription') {
    const spec = speechDataset();
    if (!spec || spec.waiting) {
      setSummary(null, spec?.waiting ?? '');
      return;
    }
    dataset = spec;
  } else if (state.model?.kind === 'series') {
    const spec = await seriesDataset();
    if (!spec || spec.waiting) {
      setSummary(null, spec?.waiting ?? '');
      return;
    }
    dataset = spec;
  } else if (state.base?.kind === 'audio' || state.model?.kind === 'audio') {
    const items = limitPerClass([...(state.base?.kind === 'audio' ? state.base.items : []), ...state.added], n);
    const labels = new Set(items.map((i) => String(i.label)));
    if (labels.size < 2) {
      // A classifier needs two classes: say what is there until the second one is recorded.
      setSummary(null, items.length ? `${items.length} ${items.length === 1 ? 'clip' : 'clips'} of “${[...labels][0]}”: record or add a second class (e.g. background) to train.` : '');
      return;
    }
    state.used = items;
    dataset = { kind: 'audio', items: items.map(({ label, source, name, samples, rate }) => (samples ? { label, name, samples, rate } : { label, source, name })) };
  } else {
    const all = [...(state.base?.items ?? []), ...state.added];
    const items = limitPerClass(all, n);
    if (!items.length) {
      setSummary(null);
      return;
    }
    state.used = items;
    dataset = { kind: 'image', items: items.map(({ label, source, name }) => ({ label, source, name })) };
  }
  state.dataBusy = true;
  update();
  renderSummary(null, { busy: 'Reading the examples…' });
  try {
    // The API sends a large folder to the worker in chunks; the page says how far it got.
    const summary = await tuner.setDataset(dataset, {
      onProgress: (done, total) => renderSummary(null, { busy: `Reading the examples… ${done.toLocaleString()} of ${total.toLocaleString()}` }),
    });
    if (token !== state.dataToken || tuner !== state.tuner) return;
    if ($('status').classList.contains('error')) say('');
    setSummary(summary);
  } catch (err) {
    if (token !== state.dataToken || tuner !== state.tuner) return;
    setSummary(null, 'These examples could not be used.');
    fail(err, 'The dataset could not be used: ');
  } finally {
    if (token === state.dataToken) {
      state.dataBusy = false;
      update();
    }
  }
}

/** The bundled set's training transcripts as sentences to record. */
async function suggestTranscripts(url) {
  if (!url) return;
  const text = await fetch(url).then((r) => (r.ok ? r.text() : '')).catch(() => '');
  const sentences = text.split('\n').slice(1).map((line) => {
    const cut = line.indexOf(',');
    return cut < 0 ? '' : line.slice(cut + 1).replace(/^"|"$/g, '').replace(/""/g, '"').trim();
  });
  suggestSentences(sentences);
}

export function revokeUrls() {
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls.clear();
  state.missUrls.clear();
}

export function urlOf(source) {
  if (source instanceof Blob) {
    const url = URL.createObjectURL(source);
    state.objectUrls.add(url);
    return url;
  }
  return String(source);
}

export function setSummary(summary, busy = '') {
  state.summary = summary;
  revokeUrls();
  const thumbs = new Map();
  if (summary?.kind === 'image' || summary?.kind === 'audio') {
    for (const item of state.used) {
      const key = String(item.label);
      const list = thumbs.get(key) ?? [];
      if (list.length < (summary.kind === 'audio' ? 3 : 4)) {
        list.push(summary.kind === 'audio' ? audioThumb(item, key, urlOf) : urlOf(item.source));
        thumbs.set(key, list);
      }
    }
  }
  renderSummary(summary, { thumbs, busy });
  if (summary?.kind === 'text') fillColumns(summary);
  else $('text-columns').hidden = state.base?.kind !== 'text' || !$('text-column').options.length;
  if (summary) validateRecipe(); // a batch chosen larger than the data is refused
  update();
}

export function fillColumns(summary) {
  const columns = summary.columns ?? [];
  $('text-columns').hidden = !columns.length;
  for (const [id, chosen] of [['text-column', summary.text_column], ['label-column', summary.label_column]]) {
    const select = $(id);
    select.replaceChildren(...columns.map((c) => el('option', { value: c }, c)));
    if (chosen != null) select.value = chosen;
  }
  state.columns = { text: summary.text_column, label: summary.label_column };
}

export async function onColumns() {
  state.columns = { text: $('text-column').value, label: $('label-column').value };
  await applyDataset();
}

export async function useFolder(files, name = 'folder') {
  if (!state.model) throw new Error('load a model first: the examples must fit its kind');
  if (state.model.kind === 'text') {
    const { items, ignored } = textFiles(files);
    if (!items.length) {
      throw new Error('no .txt files in class subfolders here: a text dataset is a CSV/TSV/JSONL table or a folder of class folders of .txt files');
    }
    const data = await textFolderToJsonl(items, { onCount: (n) => say(`Reading texts… ${n.toLocaleString()} of ${items.length.toLocaleString()}`) });
    state.base = { kind: 'text', data, name: `${name}.jsonl` };
    state.columns = {};
    say(ignored ? `${ignored} files outside class folders or not .txt were left out.` : '');
  } else if (state.model.kind === 'transcription') {
    // An audiofolder: the files under their paths below the folder picked.
    const strip = (path) => path.split('/').slice(1).join('/') || path;
    const wanted = files.filter(({ path }) => /\.(csv|jsonl|txt|wav|mp3|ogg|oga|flac|m4a|webm)$/i.test(path));
    if (!wanted.some(({ path }) => /(metadata\.csv|\.jsonl|\.txt)$/i.test(path))) {
      throw new Error('no transcripts here: a speech set is a folder with a metadata.csv (file_name, transcription) or a .jsonl of {audio, text}, or x.wav files beside x.txt');
    }
    state.base = { kind: 'transcription', files: wanted.map(({ file, path }) => ({ name: strip(path), file })), name };
    say(files.length > wanted.length ? `${files.length - wanted.length} files that are neither audio nor transcripts were left out.` : '');
  } else if (state.model.kind === 'series') {
    // Recordings: .csv/.tsv/.jsonl files; the folder each is in is its person or device.
    const tables = files.filter(({ path }) => /\.(csv|tsv|tab|jsonl|ndjson)$/i.test(path));
    if (!tables.length) throw new Error('no recordings (.csv, .tsv or .jsonl files) in this folder');
    const recordings = tables.map(({ file, path }) => {
      const parts = path.split('/');
      return { name: path, group: parts.length > 2 ? parts.slice(1, -1).join('/') : path, url: URL.createObjectURL(file) };
    });
    state.base = { kind: 'series', recordings, name };
    say(files.length > tables.length ? `${files.length - tables.length} files that are not recordings were left out.` : '');
  } else if (state.model.kind === 'audio') {
    const { items, ignored } = audioItems(files);
    if (!items.length) {
      throw new Error('no audio files in class subfolders here: pick a folder holding one subfolder per class (yes/, no/, …) of WAV, MP3, OGG or FLAC files');
    }
    state.base = { kind: 'audio', items, name };
    say(ignored ? `${ignored.toLocaleString()} files outside class folders or not audio were left out.` : '');
  } else {
    const { items, ignored } = imageItems(files);
    if (!items.length) {
      throw new Error('no images in class subfolders here: pick a folder holding one subfolder per class (cat/, dog/, …) of images');
    }
    state.base = { kind: 'image', items, name };
    say(ignored ? `${ignored.toLocaleString()} files outside class folders or not images were left out.` : '');
    dropAdded();
  }
  $('dataset-select').value = 'files';
  $('dataset-files-panel').hidden = false;
  await applyDataset();
}

export async function useTable(file) {
  if (!state.model) throw new Error('load a model first: a table is data for a text model');
  if (state.model.kind === 'series') {
    state.base = { kind: 'series', recordings: [{ name: file.name, group: file.name, url: URL.createObjectURL(file) }], name: file.name };
    $('dataset-select').value = 'files';
    $('dataset-files-panel').hidden = false;
    return applyDataset();
  }
  if (state.model.kind !== 'text') {
    throw new Error(`${file.name} is a table of texts, but ${state.model.name} is an image model: pick a text model (e.g. all-MiniLM-L6-v2) first`);
  }
  state.base = { kind: 'text', data: file, name: file.name };
  state.columns = {};
  $('dataset-select').value = 'files';
  $('dataset-files-panel').hidden = false;
  await applyDataset();
}

/** Images of one class added by hand (file picker or webcam). */
export async function addImages(files) {
  const tuner = state.tuner;
  if (!tuner) throw new Error('load a model first');
  const label = $('new-class').value.trim();
  if (!label) {
    $('new-class').focus();
    throw new Error('name the class of these images first (the “Class” field)');
  }
  const images = files.filter((f) => isImage(f));
  if (!images.length) throw new Error('none of these files is an image');
  state.dataBusy = true;
  update();
  try {
    const summary = await tuner.addData(label, images);
    if (tuner !== state.tuner) return;
    const items = images.map((file) => ({ label, source: file, name: file.name }));
    state.added.push(...items);
    state.used = [...state.used, ...items];
    setSummary(summary);
    say(`Added ${images.length} ${images.length === 1 ? 'image' : 'images'} to “${label}”.`);
  } finally {
    state.dataBusy = false;
    update();
  }
}

export async function captureForClass() {
  const video = $('webcam-video');
  if (!cameraOn(video)) {
    await startCamera(video);
    $('webcam-stop').hidden = false;
    $('webcam-capture').textContent = 'Capture a frame';
  }
  const label = $('new-class').value.trim() || 'webcam';
  state.webcamCount += 1;
  const file = await grabFrame(video, `${label}-webcam-${Date.now()}-${state.webcamCount}.png`);
  await addImages([file]);
}

// ---------------------------------------------------------------- microphone

let mic = null;

/** Seconds of audio an example holds: the recipe's `audio.window`, else the default. */
export function audioWindow() {
  let recipe = null;
  try {
    recipe = $('recipe-json').value.trim() ? JSON.parse($('recipe-json').value) : null;
  } catch {
    recipe = null;
  }
  const w = Number(recipe?.audio?.window ?? state.defaults?.audio?.window ?? 1.5);
  return Number.isFinite(w) && w > 0 ? w : 1.5;
}
/** The microphone, opened on first use (the browser asks the person once). */
export async function openMic() {
  if (!mic) {
    mic = await Mic.open();
    mic.onLevel = (level) => {
      const meter = $('mic-level');
      meter.value = Math.max(-80, level);
      meter.dataset.seconds = mic.seconds.toFixed(2);
    };
  }
  return mic;
}

/** Record one clip of the window's length for the class named, or 10 s of background (cut into
 * windows by the core), and add it to the data. */
export async function recordClip(background) {
  const label = background ? 'background' : $('record-class').value.trim();
  if (!label) {
    $('record-class').focus();
    throw new Error('name the class to record first (e.g. yes)');
  }
  const m = await openMic();
  const seconds = background ? 10 : audioWindow();
  $('record-status').textContent = `Recording “${label}” for ${seconds} s…`;
  const { samples, rate } = await m.record(seconds);
  state.recorded = (state.recorded ?? 0) + 1;
  state.added.push({ label, samples, rate, name: `${label}/recorded-${state.recorded}.wav` });
  const count = state.added.filter((a) => a.label === label).length;
  $('record-status').textContent = `Recorded “${label}” (${seconds} s; ${count} recorded for this class).`;
  await applyDataset();
}

export function stopAllCameras() {
  for (const [video, stop, button, text] of [
    [$('webcam-video'), $('webcam-stop'), $('webcam-capture'), 'Capture from webcam'],
    [$('try-video'), $('try-webcam-stop'), $('try-webcam'), 'Webcam'],
  ]) {
    if (cameraOn(video)) stopCamera(video);
    stop.hidden = true;
    button.textContent = text;
  }
}


// ---------------------------------------------------------------- drops

/** A drop, after its entries were taken synchronously in the event. */
export async function onDrop({ entries, loose, inTry }) {
  if (!entries.length && !loose.length) return;
  if (inTry) {
    const file = loose[0]?.file ?? (await walkEntries(entries.slice(0, 1)))[0]?.file;
    if (file) await tryImage(file);
    return;
  }
  say('Reading the dropped files…');
  const walked = await walkEntries(entries, {
    onCount: (n) => say(`Reading the dropped files… ${n.toLocaleString()}`),
  });
  const files = [...loose, ...walked];
  say('');
  if (!files.length) throw new Error('nothing readable was dropped');
  const kind = classifyDrop(files);
  if (kind === 'model') {
    say('');
    return loadFromFiles(files);
  }
  if (kind === 'table') return useTable(files[0].file);
  // Loose images without class folders: added by hand when a class is named.
  if (files.every((f) => !f.path.includes('/')) && files.every((f) => isImage(f.file))) {
    if ($('new-class').value.trim()) return addImages(files.map((f) => f.file));
    throw new Error('these images are in no class folder: drop a folder of class subfolders, or type a class name under “Add images by hand” and drop them again');
  }
  const root = entries.length === 1 && entries[0].isDirectory ? entries[0].name : 'folder';
  return useFolder(files, root);
}

export function wireDrops() {
  let depth = 0;
  document.addEventListener('dragenter', (e) => {
    if (![...(e.dataTransfer?.types ?? [])].includes('Files')) return;
    depth += 1;
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove('dragging');
  });
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = state.tuner && !state.running ? 'copy' : 'none';
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove('dragging');
    if (state.running || state.loading) {
      say('Wait for the current run or model load to finish before dropping files.', { error: true });
      return;
    }
    // The DataTransfer is emptied when this handler returns: take the entries now.
    const dropped = dropEntries(e.dataTransfer);
    dropped.inTry = !!e.target.closest?.('#step-try');
    guarded(onDrop)(dropped);
  });
}

