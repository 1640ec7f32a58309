// The smallest embedding of tabtune: fine-tune MiniLM on a CSV in a worker, then classify.
import { FineTuner } from '../tabtune.js';

const out = document.getElementById('out');
const dir = '../../assets/models/all-MiniLM-L6-v2/';
const perClass = Number(new URLSearchParams(location.search).get('per_class') ?? 16);
try {
  const tuner = await FineTuner.create();
  const { report } = await tuner.finetuneText({
    model: { weights: `${dir}model.safetensors`, config: `${dir}config.json`, tokenizer: `${dir}tokenizer.json` },
    data: '../../assets/datasets/rotten_tomatoes.csv',
    columns: { per_class: perClass },
    recipe: { finetune: null },
    onProgress: (e) => (out.textContent = `${tuner.device.backend}: ${e.kind} ${e.done ?? e.step ?? e.epoch}`),
  });
  const [ranked] = await tuner.predictText('A gorgeous, witty, seductive movie.');
  out.textContent = `validation accuracy ${report.metrics.accuracy}; top class ${ranked[0].label}`;
  out.dataset.result = JSON.stringify({ accuracy: report.metrics.accuracy, ranked, device: tuner.device.backend });
} catch (err) {
  out.textContent = `Error: ${err.message}`;
  out.dataset.error = err.message;
}
