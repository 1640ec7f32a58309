// Step 3: try the model, export it, save it in the browser.
import { FineTuner } from '../tabtune.js';
import { $, el, renderPrediction, renderSaved } from '../ui/render.js';
import { startCamera, grabFrame, cameraOn } from '../ui/camera.js';
import { say, state, messageOf } from './state.js';
import { loadModel, removeSavedOption } from './model.js';
import { audioWindow, openMic } from './data.js';
import { showModelPanels, update } from '../app.js';

// ---------------------------------------------------------------- try, export, save

export async function tryText() {
  const text = $('try-text').value.trim();
  if (!text) {
    $('try-text').focus();
    return;
  }
  const scores = await state.tuner.predict(text);
  renderPrediction(Array.isArray(scores[0]) ? scores[0] : scores);
}

// One file tried: shown in `element` (an <img> or an <audio>) from an object URL, then
// classified.
const shownUrls = new Map();
async function tryFile(file, element) {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  const view = $(element);
  if (shownUrls.has(element)) URL.revokeObjectURL(shownUrls.get(element));
  shownUrls.set(element, URL.createObjectURL(file));
  view.src = shownUrls.get(element);
  view.hidden = false;
  renderPrediction(null);
  $('prediction').replaceChildren(el('p', { class: 'muted' }, 'Classifying…'));
  try {
    renderPrediction(await state.tuner.predict(file));
  } catch (err) {
    renderPrediction(null);
    throw err;
  }
}

export const tryImage = (file) => tryFile(file, 'try-preview');
export const tryAudio = (file) => tryFile(file, 'try-audio-player');

// The live try: every 250 ms the last window of the microphone is classified (one call at a
// time: a slow device skips beats rather than queueing them).
let listening = null;
export async function tryListen() {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  stopListening();
  const mic = await openMic();
  const seconds = audioWindow();
  let busy = false;
  const beat = async () => {
    if (busy || !listening) return;
    busy = true;
    try {
      const scores = await state.tuner.predict({ samples: mic.last(seconds), rate: mic.rate, name: 'microphone' });
      if (!listening) return;
      renderPrediction(scores);
      $('prediction').dataset.live = scores[0]?.label ?? '';
    } catch (err) {
      stopListening();
      say(`Listening stopped: ${messageOf(err)}`, { error: true });
    } finally {
      busy = false;
    }
  };
  listening = setInterval(beat, 250);
  $('try-listen-stop').hidden = false;
  $('try-listen').hidden = true;
}

export function stopListening() {
  if (listening) clearInterval(listening);
  listening = null;
  $('try-listen-stop').hidden = true;
  $('try-listen').hidden = false;
}


export async function tryWebcam() {
  const video = $('try-video');
  if (!cameraOn(video)) {
    await startCamera(video);
    $('try-webcam-stop').hidden = false;
    $('try-webcam').textContent = 'Capture a frame';
  }
  await tryImage(await grabFrame(video, 'webcam.png'));
}

export async function exportZip() {
  const button = $('export-zip');
  button.disabled = true;
  say('Packing the model…');
  try {
    const adapterOnly = $('export-adapter-only').checked && !$('export-adapter-only').closest('label').hidden;
    const { zip } = await state.tuner.export({ adapterOnly });
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

export async function save() {
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

export async function refreshSaved(current = state.savedLoaded) {
  try {
    renderSaved(await FineTuner.saved(), { current });
  } catch (err) {
    $('saved-list').replaceChildren(el('li', { class: 'error' }, `Saved models cannot be listed: ${messageOf(err)}`));
  }
  update();
}

export async function loadSaved(name) {
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

export async function onSavedClick(event) {
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

