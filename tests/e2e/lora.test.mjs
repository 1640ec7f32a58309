// LoRA in the page (issue 21): a person picks the adapters preset, sees what it trains before
// training (the parameters, the adapter's size), trains MiniLM's adapters on the CPU fallback,
// tries a sentence, and downloads the adapter alone. The zip is kept as
// test-results/e2e/lora-page.zip with the page's prediction beside it (lora-page.json):
// `make conformance` loads that very adapter with PEFT onto the original model and compares.
// A fresh page then puts that adapter (its two files) onto MiniLM and predicts the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, open, OUTPUT, assertPrivate, unzip } from './browser.mjs';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

const SENTENCE = 'A gorgeous, witty, seductive movie.';

async function settle(page, selector, timeout, consoleLines) {
  await page.waitForSelector(`${selector}, #status.error:not([hidden])`, { timeout });
  if (await page.locator('#status.error:not([hidden])').count()) {
    throw new Error(`the page says: ${await page.textContent('#status')}; console: ${consoleLines.slice(-20).join(' | ')}`);
  }
}

test('a person trains LoRA adapters in the page and downloads the adapter alone', { timeout: 1_200_000 }, async () => {
  // The CPU fallback, as the page's text flow in app.test.mjs (SwiftShader is 12x slower).
  const { page, foreign, consoleLines } = await open(ctx, '/', { noNavigatorGpu: true });
  await page.selectOption('#model-select', 'all-MiniLM-L6-v2');
  await settle(page, '#model-info[data-arch="bert"]', 240_000, consoleLines);
  await page.fill('#per-class', '8');
  await page.selectOption('#dataset-select', 'rotten_tomatoes');
  await settle(page, '#dataset-summary[data-total="16"]', 120_000, consoleLines);

  // The preset, its rank under Advanced, and what it would train, before training.
  await page.selectOption('#preset', 'lora');
  await page.click('#advanced summary');
  await page.fill('#lora-r', '4');
  await page.fill('#head-epochs', '3');
  await page.fill('#ft-epochs', '4');
  // 12 layers x rank 4 x (384 in + 384 out) adapter weights and the 2-class head (384 x 2 + 2).
  // (The plan at the default rank 8 shows first: it is asked again once the rank is typed.)
  await page
    .waitForFunction(() => /Trains 37,634 parameters of 22,\d{3},\d{3}/.test(document.getElementById('lora-plan').textContent), null, { timeout: 60_000 })
    .catch(async () => assert.fail(`the plan at rank 4 never showed: ${await page.textContent('#lora-plan')}`));
  const plan = await page.textContent('#lora-plan');
  console.log(`plan: ${plan}`);
  assert.match(plan, /adapters on 12 layers and the new head/);
  const recipe = JSON.parse(await page.inputValue('#recipe-json'));
  assert.deepEqual({ r: recipe.finetune.lora.r, alpha: recipe.finetune.lora.alpha }, { r: 4, alpha: 8 });

  await page.click('#train');
  await settle(page, '#accuracy[data-accuracy]', 900_000, consoleLines);
  assert.equal(await page.getAttribute('#accuracy', 'data-phases'), 'head,finetune');
  await page.fill('#try-text', SENTENCE);
  await page.click('#try-text-go');
  await settle(page, '#prediction[data-top]', 300_000, consoleLines);
  const prediction = await page.$eval('#prediction', (e) => ({ top: e.dataset.top, probability: Number(e.dataset.probability) }));

  // The adapter alone: PEFT's two files (and config, tokenizer, report), no merged weights.
  await page.check('#export-adapter-only');
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }), page.click('#export-zip')]);
  const zip = readFileSync(await download.path());
  for (const name of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'config.json', 'tokenizer.json']) {
    assert.ok(zip.includes(Buffer.from(name)), `${name} is not in the zip`);
  }
  console.log(`adapter-only zip: ${zip.length} bytes; page predicts ${prediction.top} (${prediction.probability})`);
  // The merged weights are 90 MB: the adapter, the head and the tokenizer about 1 MB.
  assert.ok(zip.length < 1_500_000, `${zip.length} bytes: the merged model is in the zip`);
  writeFileSync(join(OUTPUT, 'lora-page.zip'), zip);
  writeFileSync(join(OUTPUT, 'lora-page.json'), JSON.stringify({ sentence: SENTENCE, ...prediction }));
  assertPrivate({ foreign, consoleLines });

  // Another visit: the base model, then the adapter's two files picked under "Add a LoRA
  // adapter". PEFT's folder names no classes: the page shows them by index, with the same
  // probability as the page that trained it.
  const again = await open(ctx, '/', { noNavigatorGpu: true });
  await again.page.selectOption('#model-select', 'all-MiniLM-L6-v2');
  await settle(again.page, '#model-info[data-arch="bert"]', 240_000, again.consoleLines);
  await again.page.setInputFiles('#adapter-files', [
    { name: 'adapter_config.json', mimeType: 'application/json', buffer: unzip(zip, 'adapter/adapter_config.json') },
    { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: unzip(zip, 'adapter/adapter_model.safetensors') },
  ]);
  await again.page.waitForFunction(() => /Adapter loaded: 12 adapted layers/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
  const preset = await again.page.inputValue('#preset');
  assert.equal(preset, 'lora', 'training goes on from the adapter');
  await again.page.fill('#try-text', SENTENCE);
  await again.page.click('#try-text-go');
  await settle(again.page, '#prediction[data-top]', 300_000, again.consoleLines);
  const loaded = await again.page.$eval('#prediction', (e) => ({ top: e.dataset.top, probability: Number(e.dataset.probability) }));
  console.log(`the adapter put onto MiniLM in a fresh page: ${loaded.top} (${loaded.probability})`);
  assert.match(loaded.top, /^[01]$/);
  assert.ok(Math.abs(loaded.probability - prediction.probability) < 1e-5, `${loaded.probability} vs ${prediction.probability}`);
  assertPrivate({ foreign: again.foreign, consoleLines: again.consoleLines });
});
