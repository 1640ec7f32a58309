// The smallest embedding of tabtune: fine-tune the bundled MiniLM on a CSV in a worker, then
// classify a sentence.
import { FineTuner } from '../tabtune.js';

const out = document.getElementById('out');
const perClass = Number(new URLSearchParams(location.search).get('per_class') ?? 16);
try {
  const tuner = await FineTuner.create({ model: 'all-MiniLM-L6-v2' });
  const data = '../../assets/datasets/rotten_tomatoes.csv';
  await tuner.setDataset({ kind: 'text', data, columns: { per_class: perClass } });
  const report = await tuner.train({ finetune: null }, {
    onProgress: (e) => (out.textContent = `${tuner.device.backend}: ${e.kind} ${e.done ?? e.step ?? e.epoch}`),
  });
  const ranked = await tuner.predict('A gorgeous, witty, seductive movie.');
  out.textContent = `validation accuracy ${report.metrics.accuracy}; top class ${ranked[0].label}`;
  out.dataset.result = JSON.stringify({ accuracy: report.metrics.accuracy, ranked, device: tuner.device.backend });
} catch (err) {
  out.textContent = `Error: ${err.message}`;
  out.dataset.error = err.message;
}
