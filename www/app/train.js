// Step 2: the recipe (presets and the JSON under Advanced), the run with its plots, resume.
import { FineTuner } from '../tabtune.js';
import { drawChart } from '../plot.js';
import { $, el, percent, renderReport, renderPrediction, formatSeconds, number } from '../ui/render.js';
import { fail, messageOf, say, state } from './state.js';
import { loadModel } from './model.js';
import { stopAllCameras, urlOf } from './data.js';
import { showModelPanels, update } from '../app.js';

// ---------------------------------------------------------------- recipe

export const clone = (x) => (x == null ? x : JSON.parse(JSON.stringify(x)));

export function parseRecipe({ report = true } = {}) {
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

export function showRecipeError(message) {
  const box = $('recipe-error');
  box.hidden = !message;
  box.textContent = message ? `Recipe: ${message}` : '';
  state.recipeValid = !message;
  update();
}

export function writeRecipe(recipe) {
  $('recipe-json').value = JSON.stringify(recipe, null, 2);
}

export const unfreezeValue = (u) => (u && typeof u === 'object' && u.last != null ? String(u.last) : 'all');

export function setUnfreeze(value) {
  const select = $('unfreeze');
  if (![...select.options].some((o) => o.value === value)) {
    select.append(el('option', { value }, `the last ${value}`));
  }
  select.value = value;
}

/** New defaults (a model was loaded): the simple fields and the JSON from defaultRecipe(). */
export function resetRecipe() {
  const d = clone(state.defaults) ?? {};
  state.finetuneMemo = clone(d.finetune) ?? { epochs: 3, unfreeze: 'all' };
  $('head-epochs').value = d.head?.epochs ?? 10;
  $('ft-epochs').value = d.finetune?.epochs ?? 3;
  setUnfreeze(unfreezeValue(d.finetune?.unfreeze));
  // A model with an adapter put onto it trains that adapter: its rank and alpha.
  if (d.finetune?.lora) {
    $('preset').value = 'lora';
    $('lora-r').value = d.finetune.lora.r;
    $('lora-alpha').value = d.finetune.lora.alpha;
  }
  $('recipe-json').value = '';
  fieldsToRecipe();
}

const positive = (id, fallback) => {
  const n = Number($(id).value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
};

export const int = (id, fallback, min = 1) => {
  const n = Number($(id).value);
  return Number.isInteger(n) && n >= min ? n : fallback;
};

/** The simple fields written into the JSON (the rest of the JSON is kept). */
export function fieldsToRecipe() {
  if (!state.defaults) return;
  const current = $('recipe-json').value.trim() ? parseRecipe() : clone(state.defaults);
  if (!current) return; // the JSON is broken: its error is shown, the fields wait
  const recipe = current;
  recipe.head = { ...(recipe.head ?? {}), epochs: int('head-epochs', recipe.head?.epochs ?? 10, 0) };
  const preset = $('preset').value;
  if (preset === 'head') {
    if (recipe.finetune) state.finetuneMemo = recipe.finetune;
    recipe.finetune = null;
  } else {
    const base = recipe.finetune ?? clone(state.finetuneMemo) ?? {};
    const unfreeze = $('unfreeze').value;
    recipe.finetune = {
      ...base,
      epochs: int('ft-epochs', base.epochs ?? 3),
      unfreeze: unfreeze === 'all' ? 'all' : { last: Number(unfreeze) },
      // Adapters in place of the weights: rank and alpha from Advanced, the rest kept.
      lora: preset === 'lora'
        ? { ...(base.lora ?? {}), r: int('lora-r', base.lora?.r ?? 8), alpha: positive('lora-alpha', base.lora?.alpha ?? 8) }
        : null,
    };
  }
  // Whisper's first phase trains the decoder's own weights: with adapters, they start at once.
  if (preset === 'lora' && state.tuner?.model?.kind === 'transcription') {
    recipe.head.epochs = 0;
    $('head-epochs').value = 0;
  }
  writeRecipe(recipe);
  syncPresetFields();
  validateRecipe();
}

/** The JSON (edited by hand) read back into the simple fields. */
export function recipeToFields() {
  const recipe = parseRecipe();
  if (!recipe) return;
  $('preset').value = recipe.finetune ? (recipe.finetune.lora ? 'lora' : 'full') : 'head';
  if (recipe.head?.epochs != null) $('head-epochs').value = recipe.head.epochs;
  if (recipe.finetune) {
    state.finetuneMemo = clone(recipe.finetune);
    if (recipe.finetune.epochs != null) $('ft-epochs').value = recipe.finetune.epochs;
    setUnfreeze(unfreezeValue(recipe.finetune.unfreeze));
    if (recipe.finetune.lora?.r != null) $('lora-r').value = recipe.finetune.lora.r;
    if (recipe.finetune.lora?.alpha != null) $('lora-alpha').value = recipe.finetune.lora.alpha;
  }
  syncPresetFields();
  validateRecipe();
}

export function syncPresetFields() {
  const preset = $('preset').value;
  const off = !!state.running || !state.tuner;
  const phase2 = preset !== 'head';
  $('ft-epochs').disabled = !phase2 || off;
  $('unfreeze').disabled = preset !== 'full' || off;
  for (const id of ['lora-r', 'lora-alpha']) $(id).disabled = preset !== 'lora' || off;
  for (const label of document.querySelectorAll('.full-only')) label.classList.toggle('off', !phase2);
  $('unfreeze').closest('label').classList.toggle('off', preset !== 'full');
  for (const part of document.querySelectorAll('.lora-only')) part.hidden = preset !== 'lora';
  // Adapters are for image, text, sensor and Whisper models (the audio classifier takes none).
  const kind = state.tuner?.model?.kind;
  const option = [...$('preset').options].find((o) => o.value === 'lora');
  option.disabled = kind === 'audio';
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;

/** What the adapters would train, shown before training (the core loads the model to count
 * them: asked again only when the adapters' settings, the model or the data change). */
let planKey = '';
async function showLoraPlan(recipe) {
  const box = $('lora-plan');
  if (!recipe?.finetune?.lora || !state.tuner) {
    box.textContent = '';
    planKey = '';
    return;
  }
  const key = JSON.stringify([recipe.finetune.lora, state.model?.name, state.summary?.classes]);
  if (key === planKey && box.textContent) return;
  planKey = key;
  try {
    const plan = await state.tuner.loraPlan(recipe);
    if (!plan) return;
    const trained = plan.adapter_params + plan.head_params;
    box.textContent = `Trains ${trained.toLocaleString("en-US")} parameters of ${plan.model_params.toLocaleString("en-US")} ` +
      `(${percent(trained / plan.model_params, 2)}): adapters on ${plan.layers} layers${plan.head_params ? ' and the new head' : ''}. ` +
      `The adapter download is about ${megabytes(plan.adapter_bytes)}.`;
    box.hidden = false;
  } catch (err) {
    box.textContent = '';
    showRecipeError(messageOf(err));
  }
}

let validateTimer = 0;
export function validateRecipe() {
  clearTimeout(validateTimer);
  // (A check due while a run goes on would only hear that the session is busy.)
  validateTimer = setTimeout(() => (state.running ? null : checkNow().catch(() => {})), 150);
}

/** checkRecipe on the JSON; resolves to the checked recipe or null (the message is shown). */
export async function checkNow() {
  const recipe = parseRecipe();
  if (!recipe) return null;
  const tuner = state.tuner;
  if (!tuner) return null;
  const token = ++state.validateToken;
  try {
    const checked = await tuner.checkRecipe(recipe);
    if (token === state.validateToken) {
      showRecipeError('');
      await showLoraPlan(checked);
    }
    return checked;
  } catch (err) {
    if (token === state.validateToken && tuner === state.tuner) showRecipeError(messageOf(err));
    return null;
  }
}


// ---------------------------------------------------------------- training

export const COLORS = { head: '#0a64d6', finetune: '#d9480f' };

export function resetPlots() {
  state.plot = {
    loss: { head: [], finetune: [] },
    acc: { head: [], finetune: [] },
    // Regressions: the validation error per epoch (lower is better) instead of accuracy.
    err: { head: [], finetune: [] },
    steps: 0,
    epochs: 0,
    phases: 1,
    queued: false,
  };
  drawPlots();
}

export function drawPlots() {
  const p = state.plot;
  p.queued = false;
  drawChart($('loss-plot'), [
    { name: 'head', color: COLORS.head, points: p.loss.head },
    { name: 'fine-tuning', color: COLORS.finetune, points: p.loss.finetune },
  ], { title: 'Training loss', xLabel: 'step', yLabel: 'loss', xInteger: true, empty: 'The loss per step appears here' });
  if (p.err.head.length || p.err.finetune.length) {
    drawChart($('acc-plot'), [
      { name: 'head', color: COLORS.head, points: p.err.head, dots: true },
      { name: 'fine-tuning', color: COLORS.finetune, points: p.err.finetune, dots: true },
    ], { title: 'Validation error (lower is better)', xLabel: 'epoch', xInteger: true, yLabel: 'error', yMin: 0 });
    return;
  }
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

export function queueDraw() {
  if (state.plot.queued) return;
  state.plot.queued = true;
  requestAnimationFrame(drawPlots);
}

export function setPhase(phase, text) {
  const box = $('phase');
  if (phase) box.dataset.phase = phase;
  else delete box.dataset.phase;
  box.textContent = text;
}

export const phaseName = (phase) => (phase === 'head' ? 'head' : phase === 'finetune' ? 'fine-tuning' : phase);
export const phaseIndex = (phase) => (phase === 'finetune' ? state.plot.phases : 1);

export function onProgress(e) {
  const p = state.plot;
  const bar = $('progress');
  const text = $('progress-text');
  switch (e.kind) {
    case 'features': {
      p.features = e;
      setPhase('features', `Phase 1 of ${p.phases} — head: computing features`);
      bar.value = e.total ? e.done / e.total : 0;
      text.textContent =
        `${e.done.toLocaleString()} / ${e.total.toLocaleString()} examples · ${number(e.throughput)} items/s · ETA ${formatSeconds(e.eta_s)}`;
      break;
    }
    case 'step': {
      setPhase(e.phase, `Phase ${phaseIndex(e.phase)} of ${p.phases} — ${phaseName(e.phase)}`);
      // The head's first epoch computes the features as it goes: their count is the progress.
      const f = e.phase === 'head' && p.features && p.features.done < p.features.total ? p.features : null;
      bar.value = f ? f.done / f.total : e.total_steps ? e.step / e.total_steps : 0;
      text.textContent =
        `Epoch ${e.epoch} · step ${e.step} / ${e.total_steps} · loss ${Number(e.loss).toFixed(4)} · ` +
        (f ? `features ${f.done.toLocaleString()} / ${f.total.toLocaleString()} · ETA ${formatSeconds(f.eta_s)}` : `${number(e.throughput)} items/s · ETA ${formatSeconds(e.eta_s)}`);
      p.steps += 1;
      (p.loss[e.phase] ??= []).push([p.steps, e.loss]);
      queueDraw();
      break;
    }
    case 'epoch': {
      p.epochs += 1;
      if (e.val_accuracy != null) (p.acc[e.phase] ??= []).push([p.epochs, e.val_accuracy]);
      if (e.val_error != null) (p.err[e.phase] ??= []).push([p.epochs, e.val_error]);
      queueDraw();
      break;
    }
    case 'checkpoint':
      say(e.error
        ? (e.off ? `Checkpoints are off: ${e.error}.` : `No checkpoint could be saved (${e.error}): a reload would lose this run.`)
        : `Checkpoint saved ${e.epoch ? `after epoch ${e.epoch} of the fine-tuning phase` : 'after the head phase'}: if this tab closes, the run can be resumed.`);
      break;
    case 'warning':
      say(e.message);
      break;
    default:
      break;
  }
}

export async function train() {
  if (!state.tuner || !state.summary) return;
  const recipe = parseRecipe();
  if (!recipe) return;
  clearTimeout(validateTimer);
  const checked = await checkNow();
  if (!checked) {
    $('advanced').open = true;
    return;
  }
  await run((options) => state.tuner.train(recipe, options), recipe.finetune ? 2 : 1, recipe);
}

/** Run `start({onProgress, signal})` (train or resume) with the progress UI. */
export async function run(start, phases, recipe) {
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
    const peak = Math.max(0, ...report.phases.map((ph) => ph.peak_device_bytes ?? 0));
    setPhase('done', `Done in ${formatSeconds(secs)}${report.metrics ? ` — validation accuracy ${percent(report.metrics.accuracy)}` : ''}` +
      `${peak ? ` · peak GPU memory ${Math.round(peak / 2 ** 20)} MiB` : ''}`);
    $('progress').value = 1;
    renderReport(report, { sourceOf: missSource });
    // A LoRA run can export PEFT's adapter folder alone.
    $('export-adapter-only').closest('label').hidden = !recipe?.finetune?.lora;
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

export function cancel() {
  state.running?.abort();
  $('cancel').disabled = true;
  setPhase($('phase').dataset.phase, 'Cancelling…');
}

export function hideResults() {
  $('results').hidden = true;
  $('export-adapter-only').closest('label').hidden = true;
  for (const key of ['accuracy', 'headAccuracy', 'finetuneAccuracy', 'phases']) delete $('accuracy').dataset[key];
}

/** A thumbnail URL for a misclassified example's name (images we gave the tuner). */
export function missSource(name) {
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

export function showPending(run) {
  state.pending = run;
  const when = run.saved_at ? new Date(run.saved_at) : null;
  $('resume-text').textContent =
    `A ${run.kind ?? ''} training run of ${run.model} stopped after its ${run.epoch ? `fine-tuning epoch ${run.epoch}` : phaseName(run.phase)} checkpoint` +
    `${when && !Number.isNaN(when.getTime()) ? ` (${when.toLocaleString()})` : ''}. Continue it?`;
  $('resume-banner').hidden = false;
}

export async function resume() {
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
  await run((options) => state.tuner.resume(options), pending.recipe?.finetune ? 2 : 1, pending.recipe);
}

export async function discardRun() {
  await FineTuner.discardRun();
  state.pending = null;
  $('resume-banner').hidden = true;
}

