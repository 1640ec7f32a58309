// The page: three steps (1 Data, 2 Train, 3 Try & export) over the embeddable API in
// tabtune.js. All compute runs in the API's worker; this module only keeps the page's state,
// turns clicks and drops into API calls and renders what comes back.
// The step modules are in app/: state.js (the one state object), model.js, data.js,
// train.js, try.js; this one starts the page, enables the controls and wires the events.
import { FineTuner } from './tabtune.js';
import { $, el, renderSummary, renderPrediction } from './ui/render.js';
import { fromInput } from './ui/files.js';
import { stopCamera } from './ui/camera.js';
import { fail, guarded, say, state } from './app/state.js';
import { loadAdapterFiles, loadFromFiles, loadFromUrl, loadModel, onModelSelect } from './app/model.js';
import { addImages, applyDataset, captureForClass, onColumns, onDatasetSelect, recordClip, useFolder, useTable, wireDrops } from './app/data.js';
import { cancel, discardRun, fieldsToRecipe, queueDraw, recipeToFields, resetPlots, resume, showPending, syncPresetFields, train } from './app/train.js';
import { recordMotion, showSeriesPanels, stopMotion, stopTryMotion, trySeriesFile, tryMotion } from './app/motion.js';
import { keepSentence, nextSentence, recordSentence, redoSentence, showSpeechPanels, stopSentence, transcribeClip, trySpeechRecord, trySpeechStop } from './app/speech.js';
import { exportZip, onSavedClick, refreshSaved, save, stopListening, tryAudio, tryImage, tryListen, tryText, tryWebcam } from './app/try.js';

// ---------------------------------------------------------------- start-up

export async function init() {
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

export function fillModelSelect() {
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

export function showModelPanels() {
  const value = $('model-select').value;
  $('model-files-panel').hidden = value !== 'files';
  $('model-url-panel').hidden = value !== 'url';
}


// ---------------------------------------------------------------- enabling

export function update() {
  const busy = !!state.running;
  const loading = state.loading;
  const hasModel = !!state.tuner;
  const kind = state.model?.kind;
  const set = (id, disabled) => ($(id).disabled = disabled);

  for (const id of ['model-select', 'model-files', 'model-url', 'model-url-load']) set(id, busy || loading);
  set('adapter-files', !hasModel || busy || loading || kind === 'audio');
  for (const id of ['dataset-select', 'per-class', 'dataset-folder', 'dataset-file', 'text-column', 'label-column',
    'new-class', 'add-images', 'webcam-capture']) set(id, !hasModel || busy);
  $('add-by-hand').hidden = kind !== 'image';
  $('record-audio').hidden = kind !== 'audio';
  showSeriesPanels(kind);
  showSpeechPanels(kind);
  for (const id of ['speech-record', 'speech-sentence', 'speech-next', 'speech-keep']) set(id, !hasModel || busy);
  for (const id of ['motion-record', 'motion-class', 'motion-group']) set(id, !hasModel || busy);
  // A per-step regression (RIANN) takes its targets from files, not from a typed take.
  if (state.model?.series_output?.per_step) set('motion-record', true);
  for (const id of ['record-clip', 'record-background', 'record-class']) set(id, !hasModel || busy);
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
  $('try-audio-panel').hidden = kind !== 'audio';
  $('try-hint').hidden = canTry;
  $('try-hint').textContent = busy ? 'Training… try it when the run is done.' : 'Train a model or load a saved one first.';
  for (const id of ['try-text-go', 'try-image', 'try-audio', 'try-listen', 'try-webcam', 'try-motion', 'try-series', 'try-speech', 'try-speech-record', 'export-zip', 'save']) set(id, !canTry);
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

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function wire() {
  const on = (id, type, fn) => $(id).addEventListener(type, guarded(fn));
  on('model-select', 'change', onModelSelect);
  on('model-files', 'change', () => {
    const files = fromInput($('model-files'));
    if (files.length) return loadFromFiles(files);
  });
  on('model-url-load', 'click', loadFromUrl);
  on('adapter-files', 'change', () => loadAdapterFiles(fromInput($('adapter-files'))));
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
  for (const id of ['lora-r', 'lora-alpha']) {
    on(id, 'input', debounce(fieldsToRecipe, 250));
    on(id, 'change', fieldsToRecipe);
  }
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
  on('try-audio', 'change', async () => {
    const file = $('try-audio').files?.[0];
    if (file) await tryAudio(file);
  });
  on('try-listen', 'click', tryListen);
  on('try-listen-stop', 'click', stopListening);
  on('motion-record', 'click', recordMotion);
  on('motion-stop', 'click', stopMotion);
  on('try-motion', 'click', tryMotion);
  on('try-motion-stop', 'click', stopTryMotion);
  on('try-series', 'change', async () => {
    const file = $('try-series').files?.[0];
    if (file) await trySeriesFile(file);
  });
  on('speech-record', 'click', recordSentence);
  on('speech-stop', 'click', stopSentence);
  on('speech-keep', 'click', keepSentence);
  on('speech-redo', 'click', redoSentence);
  on('speech-next', 'click', nextSentence);
  on('try-speech', 'change', async () => {
    const file = $('try-speech').files?.[0];
    if (file) await transcribeClip(file);
  });
  on('try-speech-record', 'click', trySpeechRecord);
  on('try-speech-stop', 'click', trySpeechStop);
  on('record-clip', 'click', () => recordClip(false));
  on('record-background', 'click', () => recordClip(true));
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

