// Speech recognisers in the page (issue 19): the transcribed dataset (a bundled set, a folder
// with its metadata.csv, sentences recorded here: shown, recorded, played back, kept or
// redone), and the try (a file or a recording, transcribed by the fine-tuned model with the
// original model's transcript beside it). Audio stays in the page and the worker.
import { $, el } from '../ui/render.js';
import { wav16 } from '../tabtune.js';
import { wavBlob } from '../ui/wave.js';
import { say, state } from './state.js';
import { openMic } from './data.js';

/** Sentences kept in the page: {text, samples, rate}. */
state.takes ??= [];
let take = null; // the take being recorded or waiting to be kept: {text, start, samples?, rate?}

/** The sentences to suggest: the bundled set's training transcripts (when loaded), in turn. */
let suggestions = [];
let next = 0;

export function suggestSentences(list) {
  suggestions = list.filter(Boolean);
  next = 0;
  if (!$('speech-sentence').value.trim()) nextSentence();
}

export function nextSentence() {
  if (!suggestions.length) return;
  $('speech-sentence').value = suggestions[next % suggestions.length];
  next += 1;
}

/** Start recording the sentence shown (until Stop; at most 30 s). */
export async function recordSentence() {
  const text = $('speech-sentence').value.trim();
  if (!text) {
    $('speech-sentence').focus();
    throw new Error('write the sentence to say first: it is the transcript the model learns');
  }
  const mic = await openMic();
  take = { text, start: mic.seconds };
  $('speech-record').hidden = true;
  $('speech-stop').hidden = false;
  $('speech-review').hidden = true;
  $('speech-status').textContent = `Recording: say “${text}”, then Stop.`;
}

/** Stop: the take waits to be played back, kept or redone. */
export async function stopSentence() {
  if (!take) return;
  const mic = await openMic();
  const seconds = Math.min(30, mic.seconds - take.start);
  const { samples, rate } = { samples: mic.last(seconds), rate: mic.rate };
  take = { ...take, samples, rate };
  $('speech-record').hidden = false;
  $('speech-stop').hidden = true;
  const audio = $('speech-playback');
  if (audio.src) URL.revokeObjectURL(audio.src);
  audio.src = URL.createObjectURL(wavBlob(samples, rate));
  $('speech-review').hidden = false;
  $('speech-status').textContent = `${seconds.toFixed(1)} s recorded: play it back, then keep it or redo it.`;
}

/** Keep the take as a training clip of its sentence. */
export async function keepSentence() {
  if (!take?.samples) return;
  state.takes.push({ text: take.text, samples: take.samples, rate: take.rate });
  take = null;
  $('speech-review').hidden = true;
  $('speech-sentence').value = '';
  nextSentence();
  renderTakes();
  $('speech-status').textContent = `${state.takes.length} sentence${state.takes.length === 1 ? '' : 's'} recorded.`;
  const { applyDataset } = await import('./data.js');
  await applyDataset();
}

export function redoSentence() {
  take = null;
  $('speech-review').hidden = true;
  $('speech-status').textContent = 'Record it again.';
}

function renderTakes() {
  const list = $('speech-takes');
  list.replaceChildren(...state.takes.map((t, i) => el('li', { 'data-index': String(i) },
    el('span', {}, t.text), el('span', { class: 'muted' }, ` — ${(t.samples.length / t.rate).toFixed(1)} s`))));
  list.dataset.count = String(state.takes.length);
}

/** The takes as files of an audiofolder: recorded/NNN.wav and recorded/metadata.csv. */
function takeFiles() {
  if (!state.takes.length) return [];
  const quote = (s) => `"${s.replace(/"/g, '""')}"`;
  const rows = ['file_name,transcription'];
  const files = state.takes.map((t, i) => {
    const name = `${String(i + 1).padStart(3, '0')}.wav`;
    rows.push(`${name},${quote(t.text)}`);
    return { name: `recorded/${name}`, data: wav16(t.samples, t.rate) };
  });
  files.push({ name: 'recorded/metadata.csv', data: new TextEncoder().encode(`${rows.join('\n')}\n`) });
  return files;
}

/** The dataset to set: the bundled set's or a folder's files, and the sentences recorded. */
export function speechDataset() {
  const base = state.base?.kind === 'transcription' ? state.base.files : [];
  const files = [...base.map((f) => ({ name: f.name, data: f.url ?? f.file })), ...takeFiles()];
  if (!files.length) return null;
  if (!base.length && state.takes.length < 2) {
    return { waiting: `${state.takes.length} sentence recorded: record at least one more (the model needs some to learn from and some to be judged on).` };
  }
  return { kind: 'transcription', files };
}

// ---------------------------------------------------------------- try

let tryTake = null;

/** Transcribe a clip with the fine-tuned model and the original one, side by side. */
export async function transcribeClip(clip) {
  if (!state.tuner || !state.ready) throw new Error('train a model or load a saved one first');
  $('speech-heard').replaceChildren(el('p', { class: 'muted' }, 'Transcribing…'));
  const tuned = await state.tuner.predict(clip);
  const original = await state.tuner.predict(clip, { original: true });
  const box = $('speech-heard');
  box.dataset.text = tuned.text.trim();
  box.dataset.original = original.text.trim();
  box.replaceChildren(
    el('p', {}, el('strong', {}, 'Fine-tuned: '), tuned.text.trim() || '(nothing)'),
    el('p', { class: 'muted' }, el('strong', {}, 'Before fine-tuning: '), original.text.trim() || '(nothing)'),
    el('p', { class: 'muted' }, `${tuned.seconds.toFixed(1)} s of audio`),
  );
}

export async function trySpeechRecord() {
  const mic = await openMic();
  tryTake = { start: mic.seconds };
  $('try-speech-record').hidden = true;
  $('try-speech-stop').hidden = false;
  say('Recording: speak, then Stop.');
}

export async function trySpeechStop() {
  if (!tryTake) return;
  const mic = await openMic();
  const seconds = Math.min(30, mic.seconds - tryTake.start);
  tryTake = null;
  $('try-speech-record').hidden = false;
  $('try-speech-stop').hidden = true;
  say('');
  await transcribeClip({ name: 'recording.wav', samples: mic.last(seconds), rate: mic.rate });
}

export function showSpeechPanels(kind) {
  $('record-speech').hidden = kind !== 'transcription';
  $('try-speech-panel').hidden = kind !== 'transcription';
}
