// Step 1a: the model (bundled, files, URL, saved).
import { FineTuner } from '../tabtune.js';
import { $, el, renderDevice, renderModelInfo, renderPrediction } from '../ui/render.js';
import { fromInput, modelFromFiles } from '../ui/files.js';
import { fail, say, state } from './state.js';
import { applyDataset, fillDatasetSelect, stopAllCameras } from './data.js';
import { hideResults, resetRecipe } from './train.js';
import { loadSaved } from './try.js';
import { showModelPanels, update } from '../app.js';

// ---------------------------------------------------------------- model

/** Replace the tuner with one for `source`. Resolves to true when the model loaded. */
export async function loadModel(source, { saved = null } = {}) {
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
    const tuner = await FineTuner.create({ model: source, device: pageDevice() });
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

export function onModelSelect() {
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

export function removeSavedOption(keep) {
  for (const option of $('model-select').querySelectorAll('option[value^="saved:"]')) {
    if (option.value !== keep) option.remove();
  }
}

export async function loadFromFiles(files) {
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

/** A PEFT adapter folder's two files put onto the loaded model (which then predicts with
 * the adapter and trains it further: the recipe's adapters become the folder's). */
export async function loadAdapterFiles(files) {
  if (!files.length || !state.tuner) return;
  const named = (name) => files.find((f) => f.path.split('/').at(-1) === name)?.file;
  const config = named('adapter_config.json');
  const weights = named('adapter_model.safetensors');
  if (!config || !weights) {
    say('An adapter is two files: adapter_config.json and adapter_model.safetensors. Pick both.', { error: true });
    return;
  }
  state.loading = true;
  update();
  say('Loading the adapter…');
  try {
    const tuner = state.tuner;
    const info = await tuner.loadAdapter({ config, weights, name: files[0].path.split('/').slice(0, -1).join('/') || 'adapter' });
    state.model = info;
    state.ready = !!info.classes;
    renderModelInfo(info);
    state.defaults = await tuner.defaultRecipe();
    resetRecipe();
    say(`Adapter loaded: ${info.adapter_layers} adapted layers.` + (info.classes ? ' Try it in step 3, or train it further.' : ' Train it further.'));
  } catch (err) {
    fail(err, 'The adapter could not be loaded: ');
  } finally {
    state.loading = false;
    $('adapter-files').value = '';
    update();
  }
}

export async function loadFromUrl() {
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

/** The device the page asks for: `?device=cpu` (or `gpu`) in its address, else the best one. */
function pageDevice() {
  const asked = new URLSearchParams(location.search).get('device');
  return ['cpu', 'gpu', 'auto'].includes(asked) ? asked : 'auto';
}
