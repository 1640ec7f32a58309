// DOM rendering of what the API returns: model info, dataset summary, run report, predictions,
// saved models. Pure functions of their arguments; app.js decides when to call them.

import { drawChart } from '../plot.js';

export const $ = (id) => document.getElementById(id);

/** A DOM element: el('td', {class: 'x', dataset: {a: 1}}, 'text', child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const percent = (x, digits = 1) => (x == null || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(digits)} %`);

export function formatCount(n) {
  if (!Number.isFinite(n)) return '?';
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '?';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

export function formatSeconds(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

const number = (x) => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2) : '–');

/** The device line and the CPU-fallback notice. */
export function renderDevice(device) {
  const line = $('device');
  const fallback = $('fallback');
  if (!device) {
    line.dataset.state = 'pending';
    line.textContent = 'Device: starting…';
    return;
  }
  line.dataset.state = device.backend;
  if (device.backend === 'webgpu') {
    const a = device.adapter ?? {};
    const parts = [a.vendor, a.architecture, a.device, a.description].filter(Boolean);
    const unique = [...new Set(parts)].join(' · ');
    line.textContent = `WebGPU — ${unique || 'GPU adapter'}${a.software ? ' (software renderer: slow)' : ''}`;
    fallback.hidden = true;
  } else {
    line.textContent = 'CPU (WebAssembly) — slower than a GPU';
    fallback.hidden = false;
    fallback.textContent = `Training runs on the CPU, which is much slower than a GPU: ${
      device.fallback_reason ?? 'WebGPU was not requested'
    }.`;
  }
}

/** #model-info with data-kind, data-arch, data-parameters. */
export function renderModelInfo(model, { saved = false } = {}) {
  const info = $('model-info');
  info.replaceChildren();
  for (const key of ['kind', 'arch', 'parameters', 'name', 'bytes']) delete info.dataset[key];
  if (!model) {
    info.textContent = 'No model loaded yet.';
    return;
  }
  Object.assign(info.dataset, {
    kind: model.kind,
    arch: model.arch,
    parameters: String(model.parameters),
    name: model.name,
    bytes: String(model.bytes),
  });
  const kind = { text: 'Text model', audio: 'Audio model', series: 'Series model' }[model.kind] ?? 'Image model';
  info.append(
    el('strong', {}, model.name),
    el('span', { class: 'chips' },
      el('span', { class: 'chip' }, kind),
      el('span', { class: 'chip' }, model.arch),
      el('span', { class: 'chip', title: `${model.parameters} parameters` }, `${formatCount(model.parameters)} parameters`),
      el('span', { class: 'chip', title: `${model.bytes} bytes` }, formatBytes(model.bytes)),
    ),
  );
  if (model.classes?.length) {
    info.append(
      el('span', { class: 'muted block' },
        `${saved ? 'Fine-tuned' : 'Trained'} for ${model.classes.length} classes: ${shortList(model.classes)}`),
    );
  }
}

const shortList = (names, max = 8) =>
  names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', ');

/**
 * #dataset-summary: counts per class, thumbnails (images: up to 4 per class from `thumbs`, a
 * Map label -> [url]) or preview rows (text), warnings.
 */
export function renderSummary(summary, { thumbs = new Map(), busy = '' } = {}) {
  const box = $('dataset-summary');
  const text = $('summary-text');
  const list = $('class-list');
  const warnings = $('warnings');
  list.replaceChildren();
  warnings.replaceChildren();
  if (!summary) {
    box.dataset.classes = '0';
    box.dataset.total = '0';
    text.className = 'muted';
    text.textContent = busy || 'No examples yet: choose a dataset, pick a folder, or add images by hand.';
    return;
  }
  box.dataset.classes = String(summary.classes.length);
  box.dataset.total = String(summary.total);
  box.dataset.kind = summary.kind;
  text.className = '';
  const unit = { text: 'texts', audio: 'audio files', series: 'seconds of recordings' }[summary.kind] ?? 'images';
  text.replaceChildren(...[
    el('strong', {}, `${summary.total.toLocaleString()} ${unit}`),
    ` in ${summary.classes.length} ${summary.classes.length === 1 ? 'class' : 'classes'}`,
    summary.kind === 'text' && summary.text_column
      ? el('span', { class: 'muted' }, ` · text from “${summary.text_column}”, labels from “${summary.label_column}”`)
      : null,
  ].filter(Boolean));
  const max = Math.max(1, ...summary.counts);
  summary.classes.forEach((name, i) => {
    const count = summary.counts[i] ?? 0;
    const bar = el('span', { class: 'count-bar' });
    bar.style.width = `${Math.max(2, (100 * count) / max)}%`;
    const li = el('li', { dataset: { label: name, count: String(count) } },
      el('div', { class: 'class-head' },
        el('span', { class: 'class-name' }, name),
        el('span', { class: 'class-count' }, count.toLocaleString()),
      ),
      el('div', { class: 'count-track' }, bar),
    );
    if (summary.kind === 'audio') {
      const waves = thumbs.get(String(name)) ?? [];
      if (waves.length) li.append(el('div', { class: 'thumbs waves' }, waves));
    } else if (summary.kind === 'image') {
      const urls = thumbs.get(String(name)) ?? [];
      if (urls.length) {
        li.append(el('div', { class: 'thumbs' },
          urls.slice(0, 4).map((url) => el('img', { src: url, alt: `${name} example`, loading: 'lazy', decoding: 'async' }))));
      }
    } else {
      const rows = (summary.preview ?? []).filter((r) => String(r.label) === String(name)).slice(0, 3);
      if (rows.length) li.append(el('ul', { class: 'preview' }, rows.map((r) => el('li', {}, r.text))));
    }
    list.append(li);
  });
  if (summary.kind === 'text' && summary.preview?.length && !list.querySelector('.preview')) {
    list.append(el('li', { class: 'preview-all' },
      el('ul', { class: 'preview' }, summary.preview.slice(0, 3).map((r) => el('li', {}, `${r.label}: ${r.text}`)))));
  }
  for (const w of summary.warnings ?? []) warnings.append(el('li', {}, w));
  const skipped = summary.skipped ?? [];
  if (skipped.length) {
    warnings.append(el('li', {},
      el('details', {},
        el('summary', {}, `${skipped.length} ${skipped.length === 1 ? 'row was' : 'rows were'} left out`),
        el('ul', {}, skipped.slice(0, 50).map(([where, why]) => el('li', {}, `${where}: ${why}`))),
      )));
  }
}

/** The results section from a RunReport (or evaluate()'s answer). */
export function renderReport(report, { sourceOf = () => null } = {}) {
  $('results').hidden = false;
  const metrics = report.metrics;
  const acc = $('accuracy');
  const phases = report.phases ?? [];
  acc.dataset.phases = phases.map((p) => p.phase).join(',');
  for (const p of phases) {
    const best = p.val_accuracy?.[p.best_epoch - 1];
    const key = p.phase === 'head' ? 'headAccuracy' : 'finetuneAccuracy';
    if (best != null) acc.dataset[key] = String(best);
    else delete acc.dataset[key];
  }
  if (metrics) {
    acc.dataset.accuracy = String(metrics.accuracy);
    acc.replaceChildren(
      'Validation accuracy ',
      el('strong', {}, percent(metrics.accuracy)),
      el('span', { class: 'muted' }, ` on ${metrics.count} examples · macro F1 ${metrics.macro_f1?.toFixed(3) ?? '–'}`),
    );
  } else if (report.transcription) {
    delete acc.dataset.accuracy;
    const after = report.transcription;
    const before = report.transcription_before;
    acc.dataset.wer = String(after.wer);
    if (before) acc.dataset.werBefore = String(before.wer);
    acc.replaceChildren(
      'Word error rate ', el('strong', {}, `${(after.wer * 100).toFixed(1)}%`),
      el('span', { class: 'muted' }, `${before ? ` (before: ${(before.wer * 100).toFixed(1)}%)` : ''} on ${after.count} validation clips`),
    );
  } else if (report.regression) {
    delete acc.dataset.accuracy;
    const after = report.regression;
    const before = report.regression_before;
    acc.dataset.error = String(after.attitude?.mean ?? after.rmse[0]);
    acc.replaceChildren(
      ...(after.attitude
        ? ['Attitude error ', el('strong', {}, `${after.attitude.mean.toFixed(2)}°`),
          el('span', { class: 'muted' }, `${before?.attitude ? ` (before: ${before.attitude.mean.toFixed(2)}°)` : ''} on ${after.scored.toLocaleString()} validation steps`)]
        : ['Validation RMSE ', el('strong', {}, after.rmse.map((r) => r.toFixed(4)).join(', '))]),
    );
  } else {
    delete acc.dataset.accuracy;
    acc.textContent = 'No validation examples, so no accuracy to show.';
  }
  renderRegression(report.regression, report.regression_before);
  renderTranscripts(report);
  // A regression or a transcriber has no classes: no per-class table, confusion matrix or
  // misclassified list.
  const classless = Boolean(report.regression || report.transcription);
  $('class-results').hidden = classless;
  $('miss-results').hidden = classless;

  const bits = phases.map((p) => {
    const name = p.phase === 'head' ? 'head' : 'fine-tuning';
    const best = p.val_accuracy?.[p.best_epoch - 1];
    const error = p.val_error?.[p.best_epoch - 1];
    const score = best != null ? ` (${percent(best)})` : error != null ? ` (validation error ${error.toFixed(4)})` : '';
    return `${name}: ${p.losses.length} steps in ${formatSeconds(p.seconds)}, kept epoch ${p.best_epoch}` +
      `${score}${p.stopped_early ? ', stopped early' : ''}`;
  });
  if (report.train_images != null) bits.unshift(`${report.train_images} training / ${report.val_images} validation examples`);
  if (report.truncated) bits.push(`${report.truncated} texts cut at the maximum length`);
  if (report.skipped?.length) bits.push(`${report.skipped.length} examples could not be read`);
  $('run-summary').textContent = bits.join(' · ');

  renderPerClass(metrics);
  renderConfusion(metrics, report.classes ?? metrics?.per_class?.map((c) => c.name) ?? []);
  renderMisses(report.misclassified ?? [], sourceOf);
}

/** The run's word error rates and the clips it heard worst. */
export function renderTranscripts(report) {
  const box = $('transcripts');
  box.hidden = !report?.transcription;
  if (!report?.transcription) return box.replaceChildren();
  const after = report.transcription;
  const before = report.transcription_before;
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  const worst = after.examples.filter((e) => e.wer > 0 || e.cer > 0).sort((a, b) => b.wer - a.wer).slice(0, 8);
  const beforeOf = new Map((before?.examples ?? []).map((e) => [e.name, e.hypothesis]));
  box.replaceChildren(
    el('h4', {}, 'Transcripts ', el('span', { class: 'muted' }, '(validation clips)')),
    el('p', {}, `Word error rate ${before ? `${pct(before.wer)} → ` : ''}${pct(after.wer)}, character error rate ${before ? `${pct(before.cer)} → ` : ''}${pct(after.cer)} on ${after.count} clips.`),
    worst.length
      ? el('table', { class: 'table', id: 'worst-transcripts' },
        el('tr', {}, ...['clip', 'said', 'heard', 'before', 'WER'].map((h) => el('th', {}, h))),
        ...worst.map((e) => el('tr', { 'data-name': e.name },
          el('td', {}, e.name), el('td', {}, e.reference), el('td', {}, e.hypothesis),
          el('td', { class: 'muted' }, beforeOf.get(e.name) ?? '–'), el('td', {}, pct(e.wer)))))
      : el('p', { class: 'muted' }, 'Every validation clip was transcribed right.'),
  );
}

/**
 * Per-output errors of a regression, before and after training, and one predicted-vs-true
 * plot per output (a sample of the validation values; the diagonal is a perfect model).
 */
function renderRegression(after, before) {
  $('regression').hidden = !after;
  const table = $('regression-table');
  const plots = $('regression-plots');
  if (!after) {
    plots.replaceChildren();
    return table.replaceChildren();
  }
  const head = el('tr', {}, ...['output', 'RMSE before', 'RMSE after', 'MAE after'].map((h) => el('th', {}, h)));
  const rows = after.names.map((n, i) =>
    el('tr', { 'data-output': n }, el('td', {}, n), el('td', {}, before ? before.rmse[i].toFixed(4) : '–'),
      el('td', {}, after.rmse[i].toFixed(4)), el('td', {}, after.mae[i].toFixed(4))));
  table.replaceChildren(head, ...rows);
  const canvases = after.names.map((n, i) => {
    const points = after.points?.[i] ?? [];
    return el('canvas', {
      class: 'chart scatter',
      'data-output': n,
      'data-points': String(points.length),
      'aria-label': `${n}: predicted against true on ${points.length} validation values`,
    });
  });
  plots.replaceChildren(...canvases);
  after.names.forEach((n, i) => {
    const points = after.points?.[i] ?? [];
    const values = points.flat();
    // The diagonal (predicted = true) spans the values and a margin, so that no point sits
    // on an axis.
    const lo = values.length ? Math.min(...values) : 0;
    const hi = values.length ? Math.max(...values) : 1;
    const margin = (hi - lo || 1) * 0.06;
    drawChart(canvases[i], [
      { name: 'ideal', color: '#9ca3af', points: values.length ? [[lo - margin, lo - margin], [hi + margin, hi + margin]] : [], legend: '' },
      { name: n, color: '#2b6cb0', points, scatter: true, legend: '' },
    ], { xLabel: `true ${n}`, yLabel: `predicted ${n}`, yFree: true, empty: 'No validation values' });
  });
}

function renderPerClass(metrics) {
  const table = $('per-class-metrics');
  table.replaceChildren();
  if (!metrics) return;
  table.append(
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col' }, 'Class'),
      el('th', { scope: 'col', class: 'num' }, 'Precision'),
      el('th', { scope: 'col', class: 'num' }, 'Recall'),
      el('th', { scope: 'col', class: 'num' }, 'F1'),
      el('th', { scope: 'col', class: 'num' }, 'Support'))),
    el('tbody', {}, metrics.per_class.map((c) => el('tr', { dataset: { label: c.name } },
      el('th', { scope: 'row' }, c.name),
      el('td', { class: 'num' }, percent(c.precision)),
      el('td', { class: 'num' }, percent(c.recall)),
      el('td', { class: 'num' }, c.f1.toFixed(3)),
      el('td', { class: 'num' }, String(c.support))))),
  );
}

function renderConfusion(metrics, classes) {
  const table = $('confusion');
  table.replaceChildren();
  const m = metrics?.confusion ?? [];
  const total = m.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  table.dataset.total = String(total);
  if (!m.length) return;
  const max = Math.max(1, ...m.flat());
  table.append(
    el('caption', { class: 'sr-only' }, 'Rows: true class; columns: predicted class'),
    el('thead', {}, el('tr', {},
      el('th', { class: 'corner' }, el('span', { class: 'muted' }, 'truth \\ pred')),
      classes.map((c) => el('th', { scope: 'col', title: `predicted ${c}` }, c)))),
    el('tbody', {}, m.map((row, t) => el('tr', {},
      el('th', { scope: 'row', title: `true ${classes[t]}` }, classes[t] ?? String(t)),
      row.map((count, p) => {
        const cell = el('td', {
          class: `${t === p ? 'diag' : 'off'}${count ? '' : ' zero'}`,
          title: `${count} × ${classes[t]} predicted as ${classes[p]}`,
          dataset: { truth: classes[t] ?? '', predicted: classes[p] ?? '', count: String(count) },
        }, String(count));
        const alpha = count ? 0.12 + 0.78 * (count / max) : 0;
        const hue = t === p ? '10, 100, 214' : '214, 60, 40';
        cell.style.backgroundColor = `rgba(${hue}, ${alpha.toFixed(3)})`;
        if (alpha > 0.55) cell.style.color = '#fff';
        return cell;
      })))),
  );
}

function renderMisses(misses, sourceOf) {
  const list = $('misclassified');
  list.replaceChildren();
  if (!misses.length) {
    list.append(el('li', { class: 'muted none' }, 'None: every validation example was classified right.'));
    return;
  }
  for (const miss of misses.slice(0, 12)) {
    const url = miss.text == null ? sourceOf(miss.name) : null;
    list.append(el('li', { dataset: { truth: miss.truth, predicted: miss.predicted } },
      url ? el('img', { src: url, alt: miss.name, loading: 'lazy' }) : null,
      miss.text != null ? el('q', { class: 'miss-text' }, miss.text) : null,
      el('span', { class: 'miss-label' },
        el('span', { class: 'truth' }, miss.truth), ' → ', el('span', { class: 'pred' }, miss.predicted)),
      el('span', { class: 'muted miss-name' }, miss.name),
    ));
  }
  if (misses.length > 12) list.append(el('li', { class: 'muted more' }, `and ${misses.length - 12} more`));
}

/** #prediction: the top 3 with bars; data-top and data-probability. */
export function renderPrediction(scores) {
  const box = $('prediction');
  box.replaceChildren();
  if (!scores?.length) {
    delete box.dataset.top;
    delete box.dataset.probability;
    return;
  }
  box.dataset.top = scores[0].label;
  box.dataset.probability = String(scores[0].probability);
  for (const [i, s] of scores.slice(0, 3).entries()) {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.max(0.5, s.probability * 100)}%`;
    box.append(el('div', { class: `bar-row${i === 0 ? ' top' : ''}`, dataset: { label: s.label, probability: String(s.probability) } },
      el('span', { class: 'bar-label' }, s.label),
      el('span', { class: 'bar-track' }, fill),
      el('span', { class: 'bar-value' }, percent(s.probability))));
  }
}

/** #saved-list: one row per saved model with Load and Delete buttons. */
export function renderSaved(models, { current } = {}) {
  const list = $('saved-list');
  list.replaceChildren();
  if (!models.length) {
    list.append(el('li', { class: 'muted none' }, 'Nothing saved in this browser yet.'));
    return;
  }
  for (const m of models) {
    const when = m.saved_at ? new Date(m.saved_at) : null;
    list.append(el('li', { dataset: { name: m.name }, class: m.name === current ? 'current' : null },
      el('div', { class: 'saved-main' },
        el('strong', {}, m.name),
        m.error
          ? el('span', { class: 'error' }, ` damaged: ${m.error}`)
          : el('span', { class: 'muted' },
            ` ${m.kind} · ${m.arch} · ${m.classes?.length ?? 0} classes · ${formatBytes(m.bytes)}` +
            `${when && !Number.isNaN(when.getTime()) ? ` · ${when.toLocaleString()}` : ''}`),
        m.classes?.length ? el('span', { class: 'muted block' }, shortList(m.classes, 6)) : null),
      el('div', { class: 'saved-actions' },
        m.error ? null : el('button', { type: 'button', class: 'load', dataset: { name: m.name } }, 'Load'),
        el('button', { type: 'button', class: 'remove', dataset: { name: m.name }, 'aria-label': `Delete ${m.name}` }, 'Delete')),
    ));
  }
}

export { number };
