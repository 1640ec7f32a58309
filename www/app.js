// The page: three steps (1 Data, 2 Train, 3 Try & export) over the embeddable API in
// tabtune.js. All compute runs in the API's worker; this module only keeps the page's state,
// turns clicks and drops into API calls and renders what comes back.
import { FineTuner } from './tabtune.js';
import { drawChart } from './plot.js';
import {
  $, el, percent, formatSeconds, number,
  renderDevice, renderModelInfo, renderSummary, renderReport, renderPrediction, renderSaved,
} from './ui/render.js';
import {
  fromInput, dropEntries, walkEntries, imageItems, textFiles, textFolderToJsonl,
  modelFromFiles, classifyDrop, isImage,
} from './ui/files.js';
import { startCamera, stopCamera, grabFrame, cameraOn } from './ui/camera.js';

const state = {
  tuner: null,
  model: null, // ModelInfo of the tuner
  loading: false,
  loadToken: 0,
  bundled: { models: [], datasets: [] },
  base: null, // the chosen dataset: {kind:'image', items, name} | {kind:'text', data, name}
  added: [], // images added by hand: {label, source, name}
  columns: {}, // text: {text, label} chosen in the selects
  used: [], // image items given to the last setDataset (for thumbnails and misses)
  summary: null,
  dataToken: 0,
  dataBusy: false,
  defaults: null,
  recipeValid: true,
  validateToken: 0,
  finetuneMemo: null, // the finetune section while the preset is "head"
  running: null, // AbortController of the run in progress
  ready: false, // a trained or saved model: Try and Export work
  savedLoaded: null,
  pending: null, // FineTuner.pendingRun()
  objectUrls: new Set(),
  missUrls: new Map(),
  webcamCount: 0,
  plot: null,
};

// ---------------------------------------------------------------- status line

function say(message, { error = false } = {}) {
  const status = $('status');
  status.hidden = !message;
  status.textContent = message ?? '';
  status.className = error ? 'error' : 'info';
}

const messageOf = (err) => String(err?.message ?? err ?? 'unknown error').replace(/^Error:\s*/, '');

function fail(err, prefix = '') {
  console.error(err);
  say(`${prefix}${messageOf(err)}`, { error: true });
}

/** An event handler that reports its rejection in #status instead of losing it. */
const guarded = (fn) => (...args) => {
  try {
    const result = fn(...args);
    if (result && typeof result.then === 'function') result.catch((err) => fail(err));
  } catch (err) {
    fail(err);
  }
};

// ---------------------------------------------------------------- start-up

async function init() {
  wire();
  resetPlots();
  renderSummary(null);
  renderPrediction(null);
  update();
  const [bundled, pending] = await Promise.all([
    FineTuner.bundled().catch(() => ({ models: [], datasets: [] })),
    FineTuner.pendingRun().catch(() => null),
  ]);
  state.bundled = { models: bundled?.models ?? [], datasets: bundled?.datasets ?? [] };
  fillModelSelect();
  refreshSaved();
  if (pending) showPending(pending);

  const names = state.bundled.models.map((m) => m.name);
  const first = pending && names.includes(pending.model) ? pending.model : names[0];
  if (first) {
    $('model-select').value = first;
    showModelPanels();
    await loadModel(first);
  } else {
    $('model-select').value = 'files';
    showModelPanels();
    $('device').textContent = 'Device: starts with the first model';
    say('No bundled models on this server: choose your own model files or a URL.');
  }
}

function fillModelSelect() {
  const select = $('model-select');
  select.replaceChildren();
  const group = el('optgroup', { label: 'Bundled' });
  for (const m of state.bundled.models) {
    group.append(el('option', { value: m.name }, `${m.name} (${m.kind})`));
  }
  if (group.children.length) select.append(group);
  select.append(
    el('optgroup', { label: 'Your own' },
      el('option', { value: 'files' }, 'Model files from this computer…'),
      el('option', { value: 'url' }, 'A model URL (Hugging Face)…')),
  );
}

function showModelPanels() {
  const value = $('model-select').value;
  $('model-files-panel').hidden = value !== 'files';
  $('model-url-panel').hidden = value !== 'url';
}

// ---------------------------------------------------------------- model

/** Replace the tuner with one for `source`. Resolves to true when the model loaded. */
async function loadModel(source, { saved = null } = {}) {
  const token = ++state.loadToken;
  const old = state.tuner;
  const oldKind = state.model?.kind ?? state.lastKind;
  state.tuner = null;
  state.model = null;
  state.loading = true;
  state.ready = false;
  state.savedLoaded = null;
  old?.terminate();
  stopAllCameras();
  hideResults();
  renderPrediction(null);
  renderModelInfo(null);
  $('model-info').replaceChildren(el('span', { class: 'muted' }, 'Loading the model…'));
  say('Loading the model…');
  update();
  try {
    const tuner = await FineTuner.create({ model: source, device: 'auto' });
    if (token !== state.loadToken) {
      tuner.terminate();
      return false;
    }
    const kindChanged = oldKind !== tuner.model.kind;
    state.lastKind = tuner.model.kind;
    state.tuner = tuner;
    state.model = tuner.model;
    renderDevice(tuner.device);
    renderModelInfo(tuner.model, { saved: !!saved });
    state.defaults = await tuner.defaultRecipe();
    if (token !== state.loadToken) return false;
    resetRecipe();
    const saveName = $('save-name');
    if (!saveName.value || saveName.value === state.autoSaveName) {
      state.autoSaveName = saved ?? `${tuner.model.name}-finetuned`;
      saveName.value = state.autoSaveName;
    }
    if (saved) {
      state.ready = true;
      state.savedLoaded = saved;
    }
    fillDatasetSelect(kindChanged);
    say(saved ? `Loaded “${saved}”: try it in step 3.` : '');
    state.loading = false;
    update();
    if (state.base && state.base.kind === tuner.model.kind) await applyDataset();
    else if (state.added.length && tuner.model.kind === 'image') await applyDataset();
    return true;
  } catch (err) {
    if (token !== state.loadToken) return false;
    renderModelInfo(null);
    $('model-info').textContent = 'No model loaded.';
    if ($('device').dataset.state === 'pending') $('device').textContent = 'Device: not started (no model loaded)';
    fail(err, 'The model could not be loaded: ');
    return false;
  } finally {
    if (token === state.loadToken) {
      state.loading = false;
      update();
    }
  }
}

function onModelSelect() {
  const value = $('model-select').value;
  showModelPanels();
  removeSavedOption(value);
  if (value === 'files') {
    const files = fromInput($('model-files'));
    if (files.length) return loadFromFiles(files);
    $('model-files').focus();
    return;
  }
  if (value === 'url') {
    $('model-url').focus();
    return;
  }
  if (value.startsWith('saved:')) return loadSaved(value.slice(6));
  return loadModel(value);
}

function removeSavedOption(keep) {
  for (const option of $('model-select').querySelectorAll('option[value^="saved:"]')) {
    if (option.value !== keep) option.remove();
  }
}

async function loadFromFiles(files) {
  let model;
  try {
    model = modelFromFiles(files);
  } catch (err) {
    fail(err, 'These files are not a model: ');
    return false;
  }
  $('model-select').value = 'files';
  showModelPanels();
  return loadModel(model.source);
}

async function loadFromUrl() {
  const raw = $('model-url').value.trim();
  if (!raw) {
    say('Enter a model URL, e.g. https://huggingface.co/owner/name.', { error: true });
    return;
  }
  let url;
  try {
    url = new URL(raw, location.href);
  } catch {
    say(`“${raw}” is not a URL.`, { error: true });
    return;
  }
  if (!['https:', 'http:'].includes(url.protocol)) {
    say(`Only http(s) URLs can be loaded, not ${url.protocol}`, { error: true });
    return;
  }
  await loadModel({ url: url.href });
}

// ---------------------------------------------------------------- dataset

function fillDatasetSelect(reset) {
  const select = $('dataset-select');
  const previous = select.value;
  const kind = state.model?.kind;
  select.replaceChildren(el('option', { value: '' }, 'Choose examples…'));
  const group = el('optgroup', { label: 'Bundled' });
  for (const d of state.bundled.datasets.filter((d) => d.kind === kind)) {
    const counts = Object.values(d.counts ?? {});
    const total = counts.reduce((a, b) => a + b, 0);
    const classes = d.classes?.length ?? counts.length;
    const unit = d.kind === 'text' ? 'texts' : 'images';
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
const bundledDataset = (value) => state.bundled.datasets.find((d) => d.name === value);

async function onDatasetSelect() {
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
  } else {
    const root = String(d.path ?? '').replace(/\/$/, '');
    const items = (d.files ?? []).map((path) => {
      const rel = root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
      const parts = rel.split('/');
      return { label: parts.length > 1 ? parts[0] : parts[0].replace(/\..*$/, ''), source: new URL(path, location.href).href, name: rel };
    });
    state.base = { kind: 'image', items, name: d.name };
  }
  await applyDataset();
}

/** A new dataset replaces the images added by hand (as setDataset replaces the data). */
function dropAdded() {
  if (!state.added.length) return;
  const n = state.added.length;
  state.added = [];
  say(`The ${n} ${n === 1 ? 'image' : 'images'} added by hand were replaced by the new dataset.`);
}

/** At most `n` items per label, the first ones in file order. */
function limitPerClass(items, n) {
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
function perClass() {
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
async function applyDataset() {
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

function revokeUrls() {
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls.clear();
  state.missUrls.clear();
}

function urlOf(source) {
  if (source instanceof Blob) {
    const url = URL.createObjectURL(source);
    state.objectUrls.add(url);
    return url;
  }
  return String(source);
}

function setSummary(summary, busy = '') {
  state.summary = summary;
  revokeUrls();
  const thumbs = new Map();
  if (summary?.kind === 'image') {
    for (const item of state.used) {
      const key = String(item.label);
      const list = thumbs.get(key) ?? [];
      if (list.length < 4) {
        list.push(urlOf(item.source));
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

function fillColumns(summary) {
  const columns = summary.columns ?? [];
  $('text-columns').hidden = !columns.length;
  for (const [id, chosen] of [['text-column', summary.text_column], ['label-column', summary.label_column]]) {
    const select = $(id);
    select.replaceChildren(...columns.map((c) => el('option', { value: c }, c)));
    if (chosen != null) select.value = chosen;
  }
  state.columns = { text: summary.text_column, label: summary.label_column };
}

async function onColumns() {
  state.columns = { text: $('text-column').value, label: $('label-column').value };
  await applyDataset();
}

async function useFolder(files, name = 'folder') {
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

async function useTable(file) {
  if (!state.model) throw new Error('load a model first: a table is data for a text model');
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
async function addImages(files) {
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

async function captureForClass() {
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

function stopAllCameras() {
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
async function onDrop({ entries, loose, inTry }) {
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

function wireDrops() {
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

// ---------------------------------------------------------------- recipe

const clone = (x) => (x == null ? x : JSON.parse(JSON.stringify(x)));

function parseRecipe({ report = true } = {}) {
  const text = $('recipe-json').value;
  try {
    const recipe = JSON.parse(text);
    if (!recipe || typeof recipe !== 'object' || Array.isArray(recipe)) throw new Error('the recipe is a JSON object: {...}');
    return recipe;
  } catch (err) {
    if (report) showRecipeError(`The recipe is not valid JSON: ${messageOf(err)}`);
    return null;
  }
}

function showRecipeError(message) {
  const box = $('recipe-error');
  box.hidden = !message;
  box.textContent = message ? `Recipe: ${message}` : '';
  state.recipeValid = !message;
  update();
}

function writeRecipe(recipe) {
  $('recipe-json').value = JSON.stringify(recipe, null, 2);
}

const unfreezeValue = (u) => (u && typeof u === 'object' && u.last != null ? String(u.last) : 'all');

function setUnfreeze(value) {
  const select = $('unfreeze');
  if (![...select.options].some((o) => o.value === value)) {
    select.append(el('option', { value }, `the last ${value}`));
  }
  select.value = value;
}

/** New defaults (a model was loaded): the simple fields and the JSON from defaultRecipe(). */
function resetRecipe() {
  const d = clone(state.defaults) ?? {};
  state.finetuneMemo = clone(d.finetune) ?? { epochs: 3, unfreeze: 'all' };
  $('head-epochs').value = d.head?.epochs ?? 10;
  $('ft-epochs').value = d.finetune?.epochs ?? 3;
  setUnfreeze(unfreezeValue(d.finetune?.unfreeze));
  $('recipe-json').value = '';
  fieldsToRecipe();
}

const int = (id, fallback, min = 1) => {
  const n = Number($(id).value);
  return Number.isInteger(n) && n >= min ? n : fallback;
};

/** The simple fields written into the JSON (the rest of the JSON is kept). */
function fieldsToRecipe() {
  if (!state.defaults) return;
  const current = $('recipe-json').value.trim() ? parseRecipe() : clone(state.defaults);
  if (!current) return; // the JSON is broken: its error is shown, the fields wait
  const recipe = current;
  recipe.head = { ...(recipe.head ?? {}), epochs: int('head-epochs', recipe.head?.epochs ?? 10, 0) };
  if ($('preset').value === 'head') {
    if (recipe.finetune) state.finetuneMemo = recipe.finetune;
    recipe.finetune = null;
  } else {
    const base = recipe.finetune ?? clone(state.finetuneMemo) ?? {};
    const unfreeze = $('unfreeze').value;
    recipe.finetune = {
      ...base,
      epochs: int('ft-epochs', base.epochs ?? 3),
      unfreeze: unfreeze === 'all' ? 'all' : { last: Number(unfreeze) },
    };
  }
  writeRecipe(recipe);
  syncPresetFields();
  validateRecipe();
}

/** The JSON (edited by hand) read back into the simple fields. */
function recipeToFields() {
  const recipe = parseRecipe();
  if (!recipe) return;
  $('preset').value = recipe.finetune ? 'full' : 'head';
  if (recipe.head?.epochs != null) $('head-epochs').value = recipe.head.epochs;
  if (recipe.finetune) {
    state.finetuneMemo = clone(recipe.finetune);
    if (recipe.finetune.epochs != null) $('ft-epochs').value = recipe.finetune.epochs;
    setUnfreeze(unfreezeValue(recipe.finetune.unfreeze));
  }
  syncPresetFields();
  validateRecipe();
}

function syncPresetFields() {
  const full = $('preset').value === 'full';
  for (const id of ['ft-epochs', 'unfreeze']) $(id).disabled = !full || !!state.running || !state.tuner;
  for (const label of document.querySelectorAll('.full-only')) label.classList.toggle('off', !full);
}

let validateTimer = 0;
function validateRecipe() {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(() => checkNow().catch(() => {}), 150);
}

/** checkRecipe on the JSON; resolves to the checked recipe or null (the message is shown). */
async function checkNow() {
  const recipe = parseRecipe();
  if (!recipe) return null;
  const tuner = state.tuner;
  if (!tuner) return null;
  const token = ++state.validateToken;
  try {
    const checked = await tuner.checkRecipe(recipe);
    if (token === state.validateToken) showRecipeError('');
    return checked;
  } catch (err) {
    if (token === state.validateToken && tuner === state.tuner) showRecipeError(messageOf(err));
    return null;
  }
}

// ---------------------------------------------------------------- training

const COLORS = { head: '#0a64d6', finetune: '#d9480f' };

function resetPlots() {
  state.plot = {
    loss: { head: [], finetune: [] },
    acc: { head: [], finetune: [] },
    steps: 0,
    epochs: 0,
    phases: 1,
    queued: false,
  };
  drawPlots();
}

function drawPlots() {
  const p = state.plot;
  p.queued = false;
  drawChart($('loss-plot'), [
    { name: 'head', color: COLORS.head, points: p.loss.head },
    { name: 'fine-tuning', color: COLORS.finetune, points: p.loss.finetune },
  ], { title: 'Training loss', xLabel: 'step', yLabel: 'loss', xInteger: true, empty: 'The loss per step appears here' });
  drawChart($('acc-plot'), [
    { name: 'head', color: COLORS.head, points: p.acc.head, dots: true },
    { name: 'fine-tuning', color: COLORS.finetune, points: p.acc.finetune, dots: true },
  ], {
    title: 'Validation accuracy',
    xLabel: 'epoch',
    xInteger: true,
    yLabel: 'accuracy',
    yMin: 0,
    yMax: 1,
    yFormat: (v) => `${Math.round(v * 100)}%`,
    empty: 'The accuracy per epoch appears here',
  });
}

function queueDraw() {
  if (state.plot.queued) return;
  state.plot.queued = true;
  requestAnimationFrame(drawPlots);
}

function setPhase(phase, text) {
  const box = $('phase');
  if (phase) box.dataset.phase = phase;
  else delete box.dataset.phase;
  box.textContent = text;
}

const phaseName = (phase) => (phase === 'head' ? 'head' : phase === 'finetune' ? 'fine-tuning' : phase);
const phaseIndex = (phase) => (phase === 'finetune' ? state.plot.phases : 1);

function onProgress(e) {
  const p = state.plot;
  const bar = $('progress');
  const text = $('progress-text');
  switch (e.kind) {
    case 'features': {
      setPhase('features', `Phase 1 of ${p.phases} — head: computing features`);
      bar.value = e.total ? e.done / e.total : 0;
      text.textContent =
        `${e.done.toLocaleString()} / ${e.total.toLocaleString()} examples · ${number(e.throughput)} items/s · ETA ${formatSeconds(e.eta_s)}`;
      break;
    }
    case 'step': {
      setPhase(e.phase, `Phase ${phaseIndex(e.phase)} of ${p.phases} — ${phaseName(e.phase)}`);
      bar.value = e.total_steps ? e.step / e.total_steps : 0;
      text.textContent =
        `Epoch ${e.epoch} · step ${e.step} / ${e.total_steps} · loss ${Number(e.loss).toFixed(4)} · ` +
        `${number(e.throughput)} items/s · ETA ${formatSeconds(e.eta_s)}`;
      p.steps += 1;
      (p.loss[e.phase] ??= []).push([p.steps, e.loss]);
      queueDraw();
      break;
    }
    case 'epoch': {
      p.epochs += 1;
      if (e.val_accuracy != null) (p.acc[e.phase] ??= []).push([p.epochs, e.val_accuracy]);
      queueDraw();
      break;
    }
    case 'checkpoint':
      say('Checkpoint saved after the head phase: if this tab closes, the run can be resumed.');
      break;
    default:
      break;
  }
}

async function train() {
  if (!state.tuner || !state.summary) return;
  const recipe = parseRecipe();
  if (!recipe) return;
  const checked = await checkNow();
  if (!checked) {
    $('advanced').open = true;
    return;
  }
  await run((options) => state.tuner.train(recipe, options), recipe.finetune ? 2 : 1);
}

/** Run `start({onProgress, signal})` (train or resume) with the progress UI. */
async function run(start, phases) {
  const tuner = state.tuner;
  const controller = new AbortController();
  state.running = controller;
  state.ready = false;
  stopAllCameras();
  resetPlots();
  state.plot.phases = phases;
  hideResults();
  renderPrediction(null);
  setPhase('head', `Phase 1 of ${phases} — head: preparing the examples…`);
  $('progress').value = 0;
  $('progress-text').textContent = ' ';
  say('');
  update();
  const started = performance.now();
  try {
    const report = await start({ onProgress, signal: controller.signal });
    if (tuner !== state.tuner) return;
    state.ready = true;
    const secs = (performance.now() - started) / 1000;
    setPhase('done', `Done in ${formatSeconds(secs)}${report.metrics ? ` — validation accuracy ${percent(report.metrics.accuracy)}` : ''}`);
    $('progress').value = 1;
    renderReport(report, { sourceOf: missSource });
    if (state.model && report.classes) {
      state.model = { ...state.model, classes: report.classes };
    }
    say('');
    $('results').scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (err) {
    if (tuner !== state.tuner) return;
    if (controller.signal.aborted) {
      setPhase('cancelled', 'Cancelled.');
      say('Training was cancelled.');
    } else {
      setPhase('error', 'Stopped by an error.');
      fail(err, 'Training failed: ');
    }
  } finally {
    if (state.running === controller) state.running = null;
    update();
  }
}

function cancel() {
  state.running?.abort();
  $('cancel').disabled = true;
  setPhase($('phase').dataset.phase, 'Cancelling…');
}

function hideResults() {
  $('results').hidden = true;
  for (const key of ['accuracy', 'headAccuracy', 'finetuneAccuracy', 'phases']) delete $('accuracy').dataset[key];
}

/** A thumbnail URL for a misclassified example's name (images we gave the tuner). */
function missSource(name) {
  if (state.missUrls.has(name)) return state.missUrls.get(name);
  const base = String(name).split('/').at(-1);
  const item =
    state.used.find((it) => it.name === name) ??
    state.used.find((it) => String(it.name).split('/').at(-1) === base);
  const url = item ? urlOf(item.source) : null;
  state.missUrls.set(name, url);
  return url;
}

// ---------------------------------------------------------------- resume

function showPending(run) {
  state.pending = run;
  const when = run.saved_at ? new Date(run.saved_at) : null;
  $('resume-text').textContent =
    `A ${run.kind ?? ''} training run of ${run.model} stopped after its ${phaseName(run.phase)} checkpoint` +
    `${when && !Number.isNaN(when.getTime()) ? ` (${when.toLocaleString()})` : ''}. Continue it?`;
  $('resume-banner').hidden = false;
}

async function resume() {
  const pending = state.pending;
  if (!pending) return;
  if (state.running) throw new Error('a run is in progress');
  if (!state.tuner || state.model?.name !== pending.model) {
    if (state.bundled.models.some((m) => m.name === pending.model)) $('model-select').value = pending.model;
    showModelPanels();
    const ok = await loadModel(pending.model);
    if (!ok) return;
  }
  $('resume-banner').hidden = true;
  if (pending.recipe) {
    writeRecipe(pending.recipe);
    recipeToFields();
  }
  $('step-train').scrollIntoView({ behavior: 'smooth', block: 'start' });
  state.pending = null;
  await run((options) => state.tuner.resume(options), pending.recipe?.finetune ? 2 : 1);
}

async function discardRun() {
  await FineTuner.discardRun();
  state.pending = null;
  $('resume-banner').hidden = true;
}

// ---------------------------------------------------------------- try, export, save

async function tryText() {
  const text = $('try-text').value.trim();
  if (!text) {
    $('try-text').focus();
    return;
  }
  const scores = await state.tuner.predict(text);
  renderPrediction(Array.isArray(scores[0]) ? scores[0] : scores);
}

let previewUrl = null;
async function tryImage(file) {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  const img = $('try-preview');
  img.src = previewUrl;
  img.hidden = false;
  renderPrediction(null);
  $('prediction').replaceChildren(el('p', { class: 'muted' }, 'Classifying…'));
  try {
    renderPrediction(await state.tuner.predict(file));
  } catch (err) {
    renderPrediction(null);
    throw err;
  }
}

async function tryWebcam() {
  const video = $('try-video');
  if (!cameraOn(video)) {
    await startCamera(video);
    $('try-webcam-stop').hidden = false;
    $('try-webcam').textContent = 'Capture a frame';
  }
  await tryImage(await grabFrame(video, 'webcam.png'));
}

async function exportZip() {
  const button = $('export-zip');
  button.disabled = true;
  say('Packing the model…');
  try {
    const { zip } = await state.tuner.export();
    const name = `${String(state.model?.name ?? 'model').replace(/[^\w.-]+/g, '_')}-finetuned.zip`;
    const url = URL.createObjectURL(zip);
    const a = el('a', { href: url, download: name, class: 'sr-only' }, name);
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    say(`Downloaded ${name} (${(zip.size / 1e6).toFixed(1)} MB).`);
  } finally {
    update();
  }
}

async function save() {
  const name = $('save-name').value.trim() || undefined;
  $('save').disabled = true;
  $('save-status').textContent = 'Saving…';
  try {
    const saved = await state.tuner.save(name);
    $('save-status').textContent = `Saved “${saved}” in this browser: load it from the list below, even after a reload.`;
    $('save-status').dataset.saved = saved;
    await refreshSaved(saved);
  } catch (err) {
    $('save-status').textContent = '';
    throw err;
  } finally {
    update();
  }
}

async function refreshSaved(current = state.savedLoaded) {
  try {
    renderSaved(await FineTuner.saved(), { current });
  } catch (err) {
    $('saved-list').replaceChildren(el('li', { class: 'error' }, `Saved models cannot be listed: ${messageOf(err)}`));
  }
  update();
}

async function loadSaved(name) {
  const select = $('model-select');
  const value = `saved:${name}`;
  removeSavedOption(value);
  if (![...select.options].some((o) => o.value === value)) {
    select.append(el('option', { value }, `Saved: ${name}`));
  }
  select.value = value;
  showModelPanels();
  const ok = await loadModel({ saved: name }, { saved: name });
  if (ok) {
    await refreshSaved(name);
    $('step-try').scrollIntoView({ behavior: 'smooth', block: 'start' });
  }
}

async function onSavedClick(event) {
  const button = event.target.closest('button[data-name]');
  if (!button) return;
  const name = button.dataset.name;
  if (button.classList.contains('load')) {
    if (state.running) throw new Error('wait for the run to finish, or cancel it, before loading another model');
    await loadSaved(name);
  } else if (button.classList.contains('remove')) {
    button.disabled = true;
    await FineTuner.remove(name);
    $('save-status').textContent = `Deleted “${name}”.`;
    delete $('save-status').dataset.saved;
    await refreshSaved();
  }
}

// ---------------------------------------------------------------- enabling

function update() {
  const busy = !!state.running;
  const loading = state.loading;
  const hasModel = !!state.tuner;
  const kind = state.model?.kind;
  const set = (id, disabled) => ($(id).disabled = disabled);

  for (const id of ['model-select', 'model-files', 'model-url', 'model-url-load']) set(id, busy || loading);
  for (const id of ['dataset-select', 'per-class', 'dataset-folder', 'dataset-file', 'text-column', 'label-column',
    'new-class', 'add-images', 'webcam-capture']) set(id, !hasModel || busy);
  $('add-by-hand').hidden = kind !== 'image';
  $('dataset-file-label').hidden = kind === 'image';
  $('drop-zone').classList.toggle('disabled', busy || loading);

  const hasData = !!state.summary && state.summary.total > 0;
  set('train', !hasModel || !hasData || busy || state.dataBusy || !state.recipeValid);
  set('cancel', !busy);
  for (const id of ['preset', 'head-epochs', 'recipe-json']) set(id, busy || !hasModel);
  syncPresetFields();

  const canTry = state.ready && hasModel && !busy;
  $('try-text-panel').hidden = kind !== 'text';
  $('try-image-panel').hidden = kind !== 'image';
  $('try-hint').hidden = canTry;
  $('try-hint').textContent = busy ? 'Training… try it when the run is done.' : 'Train a model or load a saved one first.';
  for (const id of ['try-text-go', 'try-image', 'try-webcam', 'export-zip', 'save']) set(id, !canTry);
  $('try-drop').classList.toggle('disabled', !canTry);

  set('next-train', !hasData);
  set('next-try', !state.ready);
  for (const button of $('saved-list').querySelectorAll('button.load')) button.disabled = busy;

  const stepState = { data: hasData || state.ready ? 'done' : 'current', train: state.ready ? 'done' : hasData ? 'current' : 'todo', try: state.ready ? 'current' : 'todo' };
  for (const link of document.querySelectorAll('.stepper a')) link.dataset.state = stepState[link.dataset.step];
  $('step-train').classList.toggle('locked', !hasData && !busy);
  $('step-try').classList.toggle('locked', !state.ready);
  document.body.classList.toggle('busy', busy);
}

// ---------------------------------------------------------------- wiring

function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function wire() {
  const on = (id, type, fn) => $(id).addEventListener(type, guarded(fn));
  on('model-select', 'change', onModelSelect);
  on('model-files', 'change', () => {
    const files = fromInput($('model-files'));
    if (files.length) return loadFromFiles(files);
  });
  on('model-url-load', 'click', loadFromUrl);
  on('model-url', 'keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      return loadFromUrl();
    }
  });

  on('dataset-select', 'change', onDatasetSelect);
  const perClassChanged = () => {
    if ($('per-class').value.trim() !== state.appliedPerClass) return applyDataset();
  };
  on('per-class', 'change', perClassChanged);
  on('per-class', 'input', debounce(perClassChanged, 600));
  on('dataset-folder', 'change', async () => {
    const files = fromInput($('dataset-folder'));
    if (!files.length) return;
    const root = files[0].path.includes('/') ? files[0].path.split('/')[0] : 'folder';
    await useFolder(files, root);
  });
  on('dataset-file', 'change', async () => {
    const file = $('dataset-file').files?.[0];
    if (file) await useTable(file);
  });
  on('text-column', 'change', onColumns);
  on('label-column', 'change', onColumns);
  on('add-images', 'change', async () => {
    const files = [...($('add-images').files ?? [])];
    if (!files.length) return;
    try {
      await addImages(files);
    } finally {
      $('add-images').value = '';
    }
  });
  on('webcam-capture', 'click', captureForClass);
  const stopper = (video, stop, start, label) => () => {
    stopCamera($(video));
    $(stop).hidden = true;
    $(start).textContent = label;
  };
  on('webcam-stop', 'click', stopper('webcam-video', 'webcam-stop', 'webcam-capture', 'Capture from webcam'));

  on('preset', 'change', fieldsToRecipe);
  for (const id of ['head-epochs', 'ft-epochs']) {
    on(id, 'input', debounce(fieldsToRecipe, 250));
    on(id, 'change', fieldsToRecipe);
  }
  on('unfreeze', 'change', fieldsToRecipe);
  on('recipe-json', 'input', debounce(recipeToFields, 400));
  on('recipe-json', 'change', recipeToFields);
  on('train', 'click', train);
  on('cancel', 'click', cancel);

  on('next-train', 'click', () => $('step-train').scrollIntoView({ behavior: 'smooth', block: 'start' }));
  on('next-try', 'click', () => $('step-try').scrollIntoView({ behavior: 'smooth', block: 'start' }));

  on('try-text-go', 'click', tryText);
  on('try-text', 'keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !$('try-text-go').disabled) {
      e.preventDefault();
      return tryText();
    }
  });
  on('try-image', 'change', async () => {
    const file = $('try-image').files?.[0];
    if (file) await tryImage(file);
  });
  on('try-webcam', 'click', tryWebcam);
  on('try-webcam-stop', 'click', stopper('try-video', 'try-webcam-stop', 'try-webcam', 'Webcam'));
  on('export-zip', 'click', exportZip);
  on('save', 'click', save);
  on('save-name', 'keydown', (e) => {
    if (e.key === 'Enter' && !$('save').disabled) return save();
  });
  on('saved-list', 'click', onSavedClick);
  on('resume', 'click', resume);
  on('discard-run', 'click', discardRun);

  wireDrops();
  if ('ResizeObserver' in window) {
    let last = 0;
    new ResizeObserver(() => {
      const w = $('loss-plot').clientWidth;
      if (w !== last) {
        last = w;
        queueDraw();
      }
    }).observe($('loss-plot'));
  }
}

init().catch((err) => fail(err, 'The page could not start: '));
