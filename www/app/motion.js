// Series models in the page (issue 18): recordings from the motion sensors, per class, shown
// as small line plots; the dataset they and a bundled set make; the live try on the sensors
// and a recording tried from a file.
import { $, el, renderPrediction } from '../ui/render.js';
import { Motion, rowsToCsv, plotRows, csvToRows } from '../ui/motion.js';
import { say, state, messageOf } from './state.js';

let motion = null;
const sensors = () => (motion ??= new Motion());

/** The recordings made in the page: {name, group, label, text, rows}. */
state.motionRecordings ??= [];

/** The loaded model's values output ({names, per_step}) when it is a regression, else null. */
function valuesOutput() {
  const out = state.model?.series_output;
  return out?.kind === 'values' ? out : null;
}

/**
 * What a take is recorded as: {label} of a class, or the regression's {targets} typed as
 * numbers ("1.5", or "0.2, 3" for two outputs, or "speed=1.5") in #motion-class.
 */
function takeOf(text) {
  const values = valuesOutput();
  if (!values) {
    if (!text) throw new Error('name the class to record first (e.g. walking)');
    return { label: text, columns: { label: text } };
  }
  if (values.per_step) {
    throw new Error(`this model gives ${values.names.join(', ')} at every step, which cannot be typed in for a take: import recordings with ${values.names.length === 1 ? 'that column' : 'those columns'} instead`);
  }
  const parts = text.split(/[,;]/).map((p) => p.trim()).filter(Boolean);
  if (parts.length !== values.names.length) {
    throw new Error(`type ${values.names.length} number${values.names.length === 1 ? '' : 's'} for ${values.names.join(', ')} (got “${text}”)`);
  }
  const columns = {};
  parts.forEach((part, i) => {
    const [name, value] = part.includes('=') ? part.split('=').map((s) => s.trim()) : [values.names[i], part];
    const number = Number(value);
    if (!values.names.includes(name)) throw new Error(`“${name}” is not an output of this model (${values.names.join(', ')})`);
    if (value === '' || !Number.isFinite(number)) throw new Error(`${name}: “${value}” is not a number`);
    columns[name] = number;
  });
  return { label: values.names.map((n) => `${n} ${columns[n]}`).join(', '), columns };
}

/** Record the sensors for the class (or target values) in #motion-class until Stop. */
export async function recordMotion() {
  let take;
  try {
    take = takeOf($('motion-class').value.trim());
  } catch (err) {
    $('motion-class').focus();
    throw err;
  }
  const label = take.label;
  // A take under way: an earlier error (a mistyped value) no longer stands.
  if ($('status').classList.contains('error')) say(null);
  $('motion-status').dataset.samples = '0';
  const m = sensors();
  await m.start();
  let drawn = 0;
  m.onSample = () => {
    // About 15 redraws a second.
    const now = performance.now();
    if (now - drawn < 66) return;
    drawn = now;
    plotRows($('motion-plot'), m.rows, { last: 300 });
    $('motion-status').textContent = `Recording “${label}”: ${m.seconds.toFixed(1)} s, ${m.rows.length} samples`;
    $('motion-status').dataset.samples = String(m.rows.length);
  };
  $('motion-record').hidden = true;
  $('motion-stop').hidden = false;
  $('motion-status').textContent = `Recording “${label}”… move as ${valuesOutput() ? 'the values say' : 'the class says'}, then Stop.`;
}

/** Stop recording: the take becomes a recording of its class (and the dataset is set again). */
export async function stopMotion() {
  const m = sensors();
  m.stop();
  m.onSample = null;
  $('motion-record').hidden = false;
  $('motion-stop').hidden = true;
  const { label, columns } = takeOf($('motion-class').value.trim());
  const group = $('motion-group').value.trim() || 'me';
  if (m.rows.length < 2) {
    $('motion-status').textContent = 'No samples came from the sensors: this device may have none, or they need a permission.';
    return;
  }
  const count = state.motionRecordings.filter((r) => r.label === label).length + 1;
  const rows = m.rows;
  const file = label.replace(/[^\w.-]+/g, '_');
  state.motionRecordings.push({ name: `${group}/${file}-${count}.csv`, group, label, rows, text: rowsToCsv(rows, columns) });
  $('motion-status').textContent = `Recorded “${label}” (${rows.at(-1)[0].toFixed(1)} s, ${rows.length} samples).`;
  renderRecordings();
  const { applyDataset } = await import('./data.js');
  await applyDataset();
}

/** The page's recordings as small plots with their class. */
export function renderRecordings() {
  const box = $('motion-recordings');
  box.replaceChildren(
    ...state.motionRecordings.map((r) => {
      const canvas = el('canvas', { width: 160, height: 48 });
      const fig = el('figure', { 'data-label': r.label }, canvas, el('figcaption', {}, `${r.label} — ${r.rows.at(-1)[0].toFixed(1)} s`));
      queueMicrotask(() => plotRows(canvas, r.rows));
      return fig;
    }),
  );
  box.dataset.count = String(state.motionRecordings.length);
}

/** A bundled series dataset's recordings ({name, group, url}), fetched as text. */
export async function fetchRecordings(recordings) {
  return Promise.all(
    recordings.map(async (r) => {
      const response = await fetch(r.url);
      if (!response.ok) throw new Error(`HTTP ${response.status} fetching ${r.name}`);
      return { name: r.name, group: r.group, text: await response.text(), val: Boolean(r.val) };
    }),
  );
}

/** The series dataset to set: the bundled set's recordings and those recorded here. */
export async function seriesDataset() {
  const bundled = state.base?.kind === 'series' ? await fetchRecordings(state.base.recordings) : [];
  const recorded = state.motionRecordings.map(({ name, group, text }) => ({ name, group, text }));
  // The set's own test recordings are the validation set; the page's takes then train.
  const recordings = [...bundled, ...recorded];
  if (!recordings.length) return null;
  const labels = new Set(state.motionRecordings.map((r) => r.label));
  if (!bundled.length && labels.size < 2) {
    const what = valuesOutput() ? 'a second take with other values' : 'a second class';
    return { waiting: `${recorded.length} recording${recorded.length === 1 ? '' : 's'} of “${[...labels][0]}”: record ${what} to train.` };
  }
  return { kind: 'series', recordings };
}

/** Seconds of one window of the loaded model (config's window at its rate), else 4.5. */
function windowSeconds() {
  const input = state.model?.series_input;
  if (input?.window && input?.rate_hz) return input.window / input.rate_hz;
  return 4.5;
}

// The live try: every 500 ms the last window of the sensors is classified (one call at a time).
let live = null;
export async function tryMotion() {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  stopTryMotion();
  const m = sensors();
  await m.start();
  const seconds = windowSeconds();
  let busy = false;
  live = setInterval(async () => {
    plotRows($('try-motion-plot'), m.rows, { last: 300 });
    if (busy || !live || m.seconds < seconds + 0.2) return;
    busy = true;
    try {
      const from = m.seconds - seconds - 0.2;
      const rows = m.rows.filter((r) => r[0] >= from);
      const p = await state.tuner.predict({ name: 'sensors.csv', text: rowsToCsv(rows) });
      if (!live) return;
      if (p.kind === 'classes' && p.windows.length) {
        const probs = p.windows.at(-1)[1];
        const scores = p.labels.map((label, i) => ({ label, probability: probs[i] })).sort((a, b) => b.probability - a.probability);
        renderPrediction(scores);
        $('prediction').dataset.live = scores[0].label;
      } else if (p.kind === 'values') {
        renderValues(p);
      }
    } catch (err) {
      stopTryMotion();
      say(`The live try stopped: ${messageOf(err)}`, { error: true });
    } finally {
      busy = false;
    }
  }, 500);
  $('try-motion').hidden = true;
  $('try-motion-stop').hidden = false;
}

export function stopTryMotion() {
  if (live) clearInterval(live);
  live = null;
  motion?.stop();
  $('try-motion').hidden = false;
  $('try-motion-stop').hidden = true;
}

/** A recording from a file: the class of each window, or the outputs plotted. */
export async function trySeriesFile(file) {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  const text = await file.text();
  const p = await state.tuner.predict({ name: file.name, text });
  if (p.kind === 'classes') {
    // The class most windows get, with the mean probabilities.
    const k = p.labels.length;
    const mean = new Array(k).fill(0);
    for (const [, probs] of p.windows) probs.forEach((v, i) => (mean[i] += v / p.windows.length));
    renderPrediction(p.labels.map((label, i) => ({ label, probability: mean[i] })).sort((a, b) => b.probability - a.probability));
  } else {
    renderValues(p, csvToRows(text));
  }
}

/** Values over time on #series-plot (the outputs; `rows` of the recording beside them). */
function renderValues(p) {
  const canvas = $('series-plot');
  canvas.hidden = false;
  plotRows(canvas, p.values.map((v, i) => [i * p.step_s, ...v]));
  const last = p.values.at(-1) ?? [];
  $('prediction').replaceChildren(
    el('p', {}, p.names.map((n, i) => `${n} ${Number(last[i]).toFixed(3)}`).join(', ')),
  );
  $('prediction').dataset.live = p.names.join(',');
  $('prediction').dataset.value = String(last[0] ?? '');
}

export function showSeriesPanels(kind) {
  $('record-motion').hidden = kind !== 'series';
  const values = kind === 'series' ? valuesOutput() : null;
  $('motion-class-label').textContent = values ? `Values of ${values.names.join(', ')}` : 'Class';
  $('motion-class').placeholder = values ? values.names.map((n, i) => `${n}=${i + 1}.5`).join(', ') : 'e.g. walking';
  $('motion-record').title = values?.per_step ? `This model gives ${values.names.join(', ')} at every step: import recordings with those columns` : '';
  $('try-motion-panel').hidden = kind !== 'series';
  if (kind !== 'series') stopTryMotion();
}
