// The embeddable API (www/tabtune.js) as a web developer uses it: the example page fine-tunes
// MiniLM in a worker on WebGPU and classifies a sentence; errors arrive as rejected promises
// whose messages name the problem.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, open, OUTPUT, assertPrivate } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('the example page embeds the FineTuner, trains and predicts', { timeout: 900_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/www/examples/text.html?per_class=4');
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
  assertPrivate({ foreign, consoleLines });
});

test('API errors are rejected promises that name the problem', { timeout: 300_000 }, async () => {
  const { page } = await open(ctx, '/www/examples/text.html?per_class=2');
  const messages = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const caught = async (promise) => promise.then(() => 'resolved', (err) => err.message);
    const dir = '/assets/models/all-MiniLM-L6-v2/';
    const out = {
      noBundled: await caught(FineTuner.create({ model: 'gpt-17' })),
      noTokenizer: await caught(FineTuner.create({ model: { kind: 'text', weights: `${dir}model.safetensors`, config: `${dir}config.json` }, device: 'cpu' })),
      notAModel: await caught(FineTuner.create({ model: { weights: new Uint8Array(64) }, device: 'cpu' })),
    };
    // A model by URL: a folder on this origin (a Hugging Face repository URL maps to its files).
    const { resolveModelUrl } = await import('/www/tabtune.js');
    out.hfUrl = resolveModelUrl('https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2');
    out.hfTree = resolveModelUrl('https://huggingface.co/owner/name/tree/v2');
    const byUrl = await FineTuner.create({ model: { url: '/assets/models/all-MiniLM-L6-v2' }, device: 'cpu' });
    out.byUrl = byUrl.model;
    byUrl.terminate();
    out.missingUrl = await caught(FineTuner.create({ model: { url: '/assets/models/nothing-here' }, device: 'cpu' }));
    const tuner = await FineTuner.create({ model: 'all-MiniLM-L6-v2', device: 'cpu' });
    out.device = tuner.device;
    out.predictFirst = await caught(tuner.predict('too early'));
    out.trainFirst = await caught(tuner.train());
    out.brokenQuote = await caught(tuner.setDataset({
      kind: 'text', name: 'bad.csv', data: 'text,label\ngood,fresh\n"never closed,fresh\nx,rotten\n',
    }));
    out.imagesForText = await caught(tuner.setDataset({ kind: 'image', items: [{ label: 'a', source: '/x.png' }, { label: 'b', source: '/y.png' }] }).then(() => tuner.train()));
    const summary = await tuner.setDataset({
      kind: 'text', name: 'tiny.csv', data: 'review,sentiment\n' + Array.from({ length: 12 }, (_, i) => `text ${i},${i % 4 ? 'pos' : 'neg'}\n`).join(''),
    });
    out.summary = summary;
    out.zeroLr = await caught(tuner.checkRecipe({ head: { lr: 0 } }));
    out.bigBatch = await caught(tuner.checkRecipe({ head: { batch_size: 64 } }));
    out.keepHead = await caught(tuner.train({ head: { epochs: 0 }, finetune: { epochs: 1 } }));
    out.full = await tuner.checkRecipe({ head: { epochs: 2 } });
    tuner.terminate();
    return out;
  });
  console.log(`API errors: ${JSON.stringify({ ...messages, full: undefined })}`);
  assert.equal(messages.hfUrl, 'https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/');
  assert.equal(messages.hfTree, 'https://huggingface.co/owner/name/resolve/v2/');
  assert.deepEqual([messages.byUrl.kind, messages.byUrl.arch, messages.byUrl.name], ['text', 'bert', 'all-MiniLM-L6-v2']);
  assert.match(messages.missingUrl, /HTTP 404 fetching .*nothing-here\/model\.safetensors/);
  assert.match(messages.noBundled, /no bundled model "gpt-17"; bundled: mobilenet_v2, efficientnet_lite0, all-MiniLM-L6-v2/);
  assert.match(messages.noTokenizer, /needs its tokenizer\.json/);
  assert.match(messages.notAModel, /model/);
  assert.match(messages.predictFirst, /no text model has been fine-tuned or loaded/);
  assert.match(messages.trainFirst, /no dataset is set/);
  assert.match(messages.brokenQuote, /bad\.csv:3: a quote opened on this line is never closed/);
  assert.match(messages.imagesForText, /a text model cannot train on an image dataset/);
  assert.deepEqual(messages.summary.classes, ['neg', 'pos']);
  assert.deepEqual(messages.summary.counts, [3, 9]);
  assert.deepEqual([messages.summary.text_column, messages.summary.label_column], ['review', 'sentiment']);
  assert.deepEqual(messages.summary.columns, ['review', 'sentiment']);
  assert.equal(messages.summary.preview.length, 5);
  assert.match(messages.summary.warnings.join(' '), /tiny class\(es\): "neg" \(3\), "pos" \(9\)/);
  assert.match(messages.summary.warnings.join(' '), /unbalanced classes: "pos" has 9 texts, "neg" 3/);
  assert.match(messages.zeroLr, /head\.lr.*0 is not a positive learning rate/);
  assert.match(messages.bigBatch, /head\.batch_size.*64 is larger than the 9 training rows/);
  assert.match(messages.keepHead, /head\.epochs.*this model has none/);
  assert.equal(messages.full.head.epochs, 2);
  assert.equal(messages.full.finetune.backbone_lr, 5e-5);
});

// The whole API on an image model: head then full fine-tuning with a checkpoint between the
// phases, metrics, predict, export as a zip, save; a reload finds the saved model (same
// prediction) and resumes a run cancelled after its checkpoint. On the CPU backend: what is
// tested here is the API's flow, and SwiftShader's emulated GPU would take 12x as long (the
// phases on WebGPU: the app's image flow, tests/web.rs, tests/e2e/memory.test.mjs).
test('the API trains, saves, reloads and resumes an image model', { timeout: 1_200_000 }, async () => {
  const { page, foreign, consoleLines } = await open(ctx, '/www/examples/text.html?per_class=2');
  page.on('console', (m) => process.stdout.write(`  [page] ${m.text()}\n`));
  const setup = `
    const { FineTuner } = await import('/www/tabtune.js');
    const { datasets } = await FineTuner.bundled();
    const mnist = datasets.find((d) => d.name === 'mnist');
    const items = ['0', '1', '2'].flatMap((c) =>
      mnist.files.filter((f) => f.split('/').at(-2) === c).slice(0, 3).map((f) => ({ label: c, source: '/' + f })));
    const recipe = { head: { epochs: 3 }, finetune: { epochs: 1, unfreeze: { last: 1 } }, val_fraction: 0.34 };
  `;
  const first = await page.evaluate(`(async () => { ${setup}
    for (const m of await FineTuner.saved()) await FineTuner.remove(m.name);
    await FineTuner.discardRun();
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const summary = await tuner.setDataset({ kind: 'image', items });
    const events = [];
    const report = await tuner.train(recipe, { onProgress: (e) => events.push(e.kind + ':' + (e.phase ?? '')) });
    const evaluation = await tuner.evaluate();
    const ranked = await tuner.predict(items[0].source);
    const { files, zip } = await tuner.export();
    const name = await tuner.save('digits');
    // A second run, cancelled once its checkpoint is kept.
    const controller = new AbortController();
    const cancelled = await tuner.train(recipe, { signal: controller.signal, onProgress: (e) => e.kind === 'checkpoint' && controller.abort() })
      .then(() => 'finished', (err) => err.message);
    tuner.terminate();
    return { model: tuner.model, summary, phases: report.phases.map((p) => p.phase), events: [...new Set(events)],
      metrics: evaluation.metrics, misses: evaluation.misclassified.length, ranked, files: Object.keys(files).sort(),
      zip: zip.size, name, cancelled, pending: await FineTuner.pendingRun() };
  })()`);
  console.log(`API images, first visit: ${JSON.stringify({ ...first, ranked: first.ranked[0] })}`);
  assert.equal(first.model.arch, 'mobilenet_v2');
  assert.equal(first.model.parameters, 3_504_872);
  assert.deepEqual(first.summary.counts, [3, 3, 3]);
  assert.deepEqual(first.phases, ['head', 'finetune']);
  assert.ok(first.events.includes('checkpoint:head'), JSON.stringify(first.events));
  assert.equal(first.metrics.confusion.flat().reduce((a, b) => a + b, 0), 3);
  assert.deepEqual(first.files, ['config.json', 'model.safetensors', 'report.json']);
  assert.ok(first.zip > 1_000_000);
  assert.equal(first.cancelled, 'cancelled');
  assert.equal(first.pending?.phase, 'head');

  await page.reload();
  const second = await page.evaluate(`(async () => { ${setup}
    const saved = await FineTuner.saved();
    const tuner = await FineTuner.create({ model: { saved: 'digits' }, device: 'cpu' });
    const ranked = await tuner.predict(items[0].source);
    tuner.terminate();
    const resumer = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const events = [];
    const report = await resumer.resume({ onProgress: (e) => events.push(e.kind + ':' + (e.phase ?? '')) });
    resumer.terminate();
    return { saved, model: tuner.model, ranked, phases: report.phases.map((p) => p.phase), events: [...new Set(events)],
      pending: await FineTuner.pendingRun() };
  })()`);
  console.log(`API images, after a reload: ${JSON.stringify({ ...second, ranked: second.ranked[0] })}`);
  assert.deepEqual(second.saved.map((s) => [s.name, s.kind, s.classes.join()]), [['digits', 'image', '0,1,2']]);
  assert.deepEqual(second.model.classes, ['0', '1', '2']);
  assert.deepEqual(second.ranked.map((r) => r.label), first.ranked.map((r) => r.label));
  for (const [i, r] of second.ranked.entries()) assert.ok(Math.abs(r.probability - first.ranked[i].probability) < 1e-5);
  assert.deepEqual(second.phases, ['head', 'finetune']);
  assert.ok(!second.events.some((e) => e.endsWith(':head')), `resume re-ran the head: ${second.events}`);
  assert.equal(second.pending, null);
  assert.deepEqual(foreign, [], `requests left the page origin; console: ${consoleLines.join(' | ')}`);
});

// Issue 5: a folder of 10,000+ images loads without freezing the page. setDataset sends the
// items (Files: nothing is decoded) to the worker in chunks; the longest gap of a 10 ms timer
// on the page while it does is the page's longest freeze.
test('10,000 images are set without freezing the page', { timeout: 300_000 }, async () => {
  const { page } = await open(ctx, '/www/examples/text.html?per_class=2');
  await page.route(`${ctx.origin}/blank`, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>blank</title>' }));
  await page.goto(`${ctx.origin}/blank`);
  const out = await page.evaluate(async () => {
    const { FineTuner } = await import('/www/tabtune.js');
    const tuner = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const png = await (await fetch('/assets/datasets/mnist/0/0005.png')).blob();
    const items = Array.from({ length: 10_000 }, (_, i) => ({
      label: `class ${i % 10}`,
      source: new File([png], `${i}.png`, { type: 'image/png' }),
    }));
    let longest = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 10);
    const started = performance.now();
    const summary = await tuner.setDataset({ kind: 'image', items });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(timer);
    tuner.terminate();
    return { total: summary.total, counts: summary.counts, longest, seconds };
  });
  console.log(`10,000 images: set in ${out.seconds.toFixed(2)} s, longest page freeze ${out.longest.toFixed(0)} ms`);
  assert.equal(out.total, 10_000);
  assert.deepEqual(out.counts, Array(10).fill(1000));
  assert.ok(out.longest < 1000, `the page froze for ${out.longest} ms`);
});
