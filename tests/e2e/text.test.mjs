// Text in the tab: all-MiniLM-L6-v2 on WebGPU against the PyTorch reference (token ids, last
// hidden states, sentence embeddings). Fine-tuning it on the page is app.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, open, assertPrivate } from './browser.mjs';

const MODEL = 'assets/models/all-MiniLM-L6-v2';
const FIXTURES = 'tests/fixtures/all-minilm-l6-v2';

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

// A little-endian float32 .npy file as a flat array.
function npy(path) {
  const bytes = readFileSync(path);
  assert.equal(bytes.subarray(1, 6).toString('latin1'), 'NUMPY');
  const headerLen = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
  assert.match(header, /'descr': '<f4'/);
  const data = bytes.subarray(10 + headerLen);
  return new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
}

// ||a - b|| / ||b||.
function relErr(a, b) {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

test('all-MiniLM-L6-v2 on WebGPU matches PyTorch from the text up', { timeout: 600_000 }, async () => {
  const reference = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8'));
  const { page, foreign, consoleLines } = await open(ctx, '/');
  const out = await page.evaluate(
    async ({ sentences, base }) => {
      const { default: init, Session } = await import('/www/pkg-bench/tabtune.js');
      await init();
      const session = await Session.create('gpu');
      const get = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
      const files = {
        name: 'all-MiniLM-L6-v2',
        files: {
          'model.safetensors': await get('model.safetensors'),
          'tokenizer.json': await get('tokenizer.json'),
          'config.json': new TextDecoder().decode(await get('config.json')),
        },
      };
      const r = await session.embedText(files, sentences);
      return {
        backend: session.device.backend,
        ids: r.ids,
        mask: r.mask,
        dims: r.dims,
        hidden: Array.from(r.hidden),
        embeddings: Array.from(r.embeddings),
      };
    },
    { sentences: reference.sentences, base: `/${MODEL}/` },
  ).catch((err) => {
    throw new Error(`${err.message}; console: ${consoleLines.join(' | ')}`);
  });
  assert.equal(out.backend, 'webgpu');
  assert.deepEqual(out.ids, reference.input_ids.flat());
  assert.deepEqual(out.mask, reference.attention_mask.flat());
  assert.deepEqual(out.dims, [3, 15, 384]);
  const hidden = relErr(out.hidden, npy(join(FIXTURES, 'ref_last_hidden_state.npy')));
  const embeddings = relErr(out.embeddings, npy(join(FIXTURES, 'ref_sentence_embeddings.npy')));
  console.log(`WebGPU vs PyTorch: last_hidden_state rel err ${hidden.toExponential(2)}, ` +
    `sentence embeddings ${embeddings.toExponential(2)}`);
  assert.ok(hidden <= 1e-4, `last_hidden_state rel err ${hidden}`);
  assert.ok(embeddings <= 1e-4, `sentence embeddings rel err ${embeddings}`);
  assertPrivate({ foreign, consoleLines });
  await page.close();
});
