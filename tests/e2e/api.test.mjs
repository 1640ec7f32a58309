// The embeddable API (www/tabtune.js) as a web developer uses it: the example page fine-tunes
// MiniLM in a worker on WebGPU and classifies a sentence; errors arrive as rejected promises
// whose messages name the problem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, open, OUTPUT } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('the example page embeds the FineTuner, trains and predicts', { timeout: 900_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/www/examples/text.html?per_class=8');
  await page.waitForSelector('#out[data-result], #out[data-error]', { timeout: 850_000 });
  await page.screenshot({ path: join(OUTPUT, 'example-text.png'), fullPage: true });
  const error = await page.getAttribute('#out', 'data-error');
  assert.equal(error, null, `${error}; console: ${consoleLines.join(' | ')}`);
  const result = JSON.parse(await page.getAttribute('#out', 'data-result'));
  console.log(`example page: ${JSON.stringify(result)}`);
  assert.equal(result.device, 'webgpu');
  assert.deepEqual(result.ranked.map((r) => r.label).sort(), ['fresh', 'rotten']);
  const total = result.ranked.reduce((s, r) => s + r.probability, 0);
  assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
  assert.ok(result.ranked[0].probability >= result.ranked[1].probability);
  assert.ok(result.accuracy >= 0 && result.accuracy <= 1);
  assert.deepEqual(foreign, [], 'requests left the page origin');
});

test('API errors are rejected promises that name the problem', { timeout: 300_000 }, async () => {
  const { page } = await open(ctx, '/www/examples/text.html?per_class=2');
  const messages = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ device: 'cpu' });
    const dir = '/assets/models/all-MiniLM-L6-v2/';
    const model = { weights: `${dir}model.safetensors`, config: `${dir}config.json`, tokenizer: `${dir}tokenizer.json` };
    const caught = async (promise) => promise.then(() => 'resolved', (err) => err.message);
    const out = {
      predictFirst: await caught(tuner.predictText('too early')),
      brokenQuote: await caught(tuner.finetuneText({
        model, name: 'bad.csv', data: 'text,label\ngood,fresh\n"never closed,fresh\nx,rotten\n',
      })),
      noModel: await caught(tuner.finetuneText({ model: { weights: `${dir}model.safetensors` }, data: 'a\n' })),
    };
    tuner.terminate();
    return out;
  });
  console.log(`API errors: ${JSON.stringify(messages)}`);
  assert.match(messages.predictFirst, /no text model has been fine-tuned/);
  assert.match(messages.brokenQuote, /bad\.csv:3: a quote opened on this line is never closed/);
  assert.match(messages.noModel, /needs \{weights, config, tokenizer\}/);
});

test('the API fine-tunes an image head and classifies an image', { timeout: 600_000 }, async () => {
  const { page, foreign } = await open(ctx, '/www/examples/text.html?per_class=2');
  const out = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const index = await (await fetch('/assets/index.json')).json();
    const mnist = index.datasets.find((d) => d.name === 'mnist');
    const classes = ['0', '1', '2'];
    const items = [];
    for (const c of classes) {
      const files = mnist.files.filter((f) => f.split('/').at(-2) === c).slice(0, 3);
      for (const f of files) items.push({ name: f, label: classes.indexOf(c), source: `/${f}` });
    }
    const tuner = await FineTuner.create({ device: 'gpu' });
    const steps = [];
    const { report, model } = await tuner.finetuneImages({
      weights: '/assets/models/mobilenet_v2/model.safetensors',
      dataset: { classes, items },
      recipe: { head: { epochs: 3 }, finetune: null, val_fraction: 0.34 },
      onProgress: (e) => e.kind === 'step' && steps.push(e.step),
    });
    const ranked = await tuner.predictImage(items[0].source);
    tuner.terminate();
    return { phases: report.phases.map((p) => p.phase), steps, bytes: model.length, ranked };
  });
  console.log(`API images: ${JSON.stringify({ ...out, ranked: out.ranked.slice(0, 1) })}`);
  assert.deepEqual(out.phases, ['head']);
  assert.deepEqual(out.steps, [1, 2, 3]);
  assert.ok(out.bytes > 1_000_000);
  assert.deepEqual(out.ranked.map((r) => r.label).sort(), ['0', '1', '2']);
  assert.deepEqual(foreign, [], 'requests left the page origin');
});
