// The page's state, in one place, and its status line: every step module reads and writes
// `state` and reports through say/fail.
import { $ } from '../ui/render.js';


export const state = {
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

export function say(message, { error = false } = {}) {
  const status = $('status');
  status.hidden = !message;
  status.textContent = message ?? '';
  status.className = error ? 'error' : 'info';
}

export const messageOf = (err) => String(err?.message ?? err ?? 'unknown error').replace(/^Error:\s*/, '');

export function fail(err, prefix = '') {
  console.error(err);
  say(`${prefix}${messageOf(err)}`, { error: true });
}

/** An event handler that reports its rejection in #status instead of losing it. */
export const guarded = (fn) => (...args) => {
  try {
    const result = fn(...args);
    if (result && typeof result.then === 'function') result.catch((err) => fail(err));
  } catch (err) {
    fail(err);
  }
};

