// The page: owns the DOM, talks to the worker by messages, never touches the core directly.
import { drawSeries } from './plot.js';

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const losses = [];

function describe(device) {
  if (device.backend === 'cpu') return 'CPU (wasm, burn flex backend)';
  const a = device.adapter ?? {};
  const parts = [a.vendor, a.architecture, a.description].filter(Boolean).join(' · ');
  return `WebGPU — ${parts || 'adapter'}${a.software ? ' (software rendering)' : ''}`;
}

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'ready': {
      $('device').textContent = describe(data.device);
      $('device').dataset.state = data.device.backend;
      if (data.device.fallback_reason) {
        $('fallback').hidden = false;
        $('fallback').textContent =
          `Running on the CPU, which is slower: ${data.device.fallback_reason}.`;
      }
      $('train').disabled = false;
      break;
    }
    case 'progress': {
      const e = data.event;
      if (e.kind === 'step') {
        losses.push(e.loss);
        $('progress').value = e.step / e.total_steps;
        $('status').textContent =
          `Epoch ${e.epoch} · step ${e.step}/${e.total_steps} · loss ${e.loss.toFixed(4)} · ` +
          `${Math.round(e.throughput)} rows/s · ${e.eta_s.toFixed(1)} s left`;
        drawSeries($('loss-plot'), losses, { label: 'loss' });
      }
      break;
    }
    case 'done': {
      const r = data.report;
      const acc = r.val_accuracy.at(-1);
      const first = r.losses[0];
      const last = r.losses.at(-1);
      $('result').textContent =
        `Done: ${r.losses.length} steps in ${r.seconds.toFixed(2)} s; ` +
        `loss ${first.toFixed(4)} → ${last.toFixed(4)}; validation accuracy ${(acc * 100).toFixed(1)}%`;
      $('result').dataset.firstLoss = first;
      $('result').dataset.lastLoss = last;
      $('result').dataset.accuracy = acc;
      finish();
      break;
    }
    case 'error':
      $('status').textContent = `Error: ${data.message}`;
      $('status').className = 'error';
      if ($('device').dataset.state === 'pending') $('device').textContent = 'No device';
      finish();
      break;
  }
};

function finish() {
  $('train').disabled = false;
  $('cancel').disabled = true;
}

$('train').onclick = () => {
  const epochs = Number($('epochs').value);
  if (!Number.isInteger(epochs) || epochs < 1) {
    $('status').textContent = 'Epochs must be a whole number of at least 1.';
    $('status').className = 'error';
    return;
  }
  losses.length = 0;
  $('status').className = '';
  $('result').textContent = '';
  $('train').disabled = true;
  $('cancel').disabled = false;
  worker.postMessage({ type: 'train', recipe: { head: { epochs } }, spec: null });
};
$('cancel').onclick = () => worker.postMessage({ type: 'cancel' });

const requested = new URLSearchParams(location.search).get('device') ?? 'auto';
worker.postMessage({ type: 'init', device: requested });
