// The npm package as a web developer gets it: `npm pack` of this repository, unpacked next to a
// blank page that imports it, fine-tunes a text head from model files given by URL and
// classifies a sentence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, open, OUTPUT, assertPrivate } from './browser.mjs';

const DIR = join(OUTPUT, 'pack');

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('npm pack yields a package a blank page imports and trains with', { timeout: 600_000 }, async () => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', DIR], { encoding: 'utf8' }).trim().split('\n').at(-1);
  execFileSync('tar', ['-xzf', join(DIR, tarball), '-C', DIR]);
  const files = readdirSync(join(DIR, 'package', 'www'), { recursive: true }).sort();
  console.log(`${tarball}: ${files.join(', ')}`);
  for (const f of ['tabtune.js', 'worker.js', 'decoder.js', 'tabtune.d.ts', 'pkg/tabtune_bg.wasm', 'pkg/tabtune.js', 'pkg/tabtune.d.ts']) {
    assert.ok(files.includes(f), `${f} is not in the package`);
  }
  writeFileSync(join(DIR, 'blank.html'), '<!doctype html><meta charset="utf-8"><title>blank</title><pre id="out"></pre>\n');
  const { page, foreign, consoleLines } = await open(ctx, '/test-results/e2e/pack/blank.html');
  const out = await page.evaluate(async () => {
    const { FineTuner } = await import('./package/www/tabtune.js');
    const dir = '/assets/models/all-MiniLM-L6-v2/';
    const tuner = await FineTuner.create({
      model: { kind: 'text', weights: `${dir}model.safetensors`, config: `${dir}config.json`, tokenizer: `${dir}tokenizer.json` },
    });
    const rows = ['a joy to watch,fresh', 'dull and long,rotten', 'warm and funny,fresh', 'a tedious mess,rotten',
      'smart and moving,fresh', 'lifeless and flat,rotten'];
    await tuner.setDataset({ kind: 'text', name: 'tiny.csv', data: `text,label\n${rows.join('\n')}\n` });
    const report = await tuner.train({ head: { epochs: 5 }, finetune: null, val_fraction: 0.34 });
    const ranked = await tuner.predict('a funny, moving film');
    tuner.terminate();
    return { backend: tuner.device.backend, model: tuner.model, phases: report.phases.length, ranked };
  }).catch((err) => {
    throw new Error(`${err.message}; console: ${consoleLines.join(' | ')}`);
  });
  console.log(`blank page: ${JSON.stringify(out)}`);
  assert.equal(out.backend, 'webgpu');
  assert.equal(out.model.arch, 'bert');
  assert.equal(out.phases, 1);
  assert.deepEqual(out.ranked.map((r) => r.label).sort(), ['fresh', 'rotten']);
  assertPrivate({ foreign, consoleLines });
});
