// The bad-input matrix where the page meets it: the rows of tests/bad_input.rs that reach the
// browser, fed through the embeddable API in Chromium (wasm, CPU backend). Each row says what
// it must show; after each, the tuners that held a model and a dataset still hold them and
// take the next good input. The image files are tests/fixtures/bad's (scripts/bad_inputs.py),
// decoded by the browser as a user's files are.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { start, open, assertPrivate, digits } from './browser.mjs';

// Three digits of each of two classes, by URL.
const DIGITS = digits(3);

let ctx;
before(async () => {
  ctx = await start();
});
after(async () => ctx?.stop());

test('bad input through the API: each row refused (or read) as it must be, the session usable after', { timeout: 900_000 }, async () => {
  const { page, ...seen } = await open(ctx, '/blank');
  const rows = await page.evaluate(async (digits) => {
    const { FineTuner } = await import('/www/tabtune.js');
    const rows = [];
    const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
    const image = await FineTuner.create({ model: 'mobilenet_v2', device: 'cpu' });
    const text = await FineTuner.create({ model: 'all-MiniLM-L6-v2', device: 'cpu' });
    const goodText = 'text,label\nlovely,pos\ngreat,pos\nfine,pos\nawful,neg\nbad,neg\npoor,neg\n';
    await text.setDataset({ kind: 'text', data: goodText, name: 'good.csv' });
    // Usable: both tuners answer with their model and dataset.
    const usable = async () => {
      const [a, b] = await Promise.all([image.checkRecipe({ head: { epochs: 1, batch_size: 2 } }), text.checkRecipe({ head: { epochs: 1, batch_size: 2 } })]);
      if (!a?.head || !b?.head) throw new Error('a tuner lost its recipe');
      if (image.model?.arch !== 'mobilenet_v2' || text.model?.kind !== 'text') throw new Error('a tuner lost its model');
    };
    const row = async (area, name, run, want) => {
      let error = null;
      let value;
      try {
        value = await run();
      } catch (err) {
        error = String(err?.message ?? err);
      }
      let ok;
      if (want instanceof RegExp) ok = error !== null && want.test(error);
      else ok = error === null && (want === undefined || want(value));
      let after = null;
      try {
        await usable();
      } catch (err) {
        after = String(err?.message ?? err);
      }
      rows.push({ area, name, ok: ok && after === null, error, after, value: value === undefined ? undefined : JSON.stringify(value)?.slice(0, 300) });
    };

    // ---- weights ----
    const mobilenet = await bytes('/assets/models/mobilenet_v2/model.safetensors');
    const header = (b) => {
      const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
      return { n, json: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) };
    };
    const rebuild = (json, data) => {
      const h = new TextEncoder().encode(JSON.stringify(json));
      const out = new Uint8Array(8 + h.length + data.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      out.set(data, 8 + h.length);
      return out;
    };
    const { n, json } = header(mobilenet);
    const data = mobilenet.subarray(8 + n);
    const load = (weights) => FineTuner.create({ model: { kind: 'image', weights, name: 'bad' }, device: 'cpu' }).then((t) => t.terminate());
    await row('weights', '0-byte file', () => load(new Uint8Array(0)), /empty \(0 bytes\)/);
    await row('weights', 'header length past the end', () => {
      const b = mobilenet.slice();
      new DataView(b.buffer).setBigUint64(0, BigInt(b.length + 100), true);
      return load(b);
    }, /bad/);
    await row('weights', 'an I64 tensor', () => {
      const j = structuredClone(json);
      j['classifier.1.bias'] = { ...j['classifier.1.bias'], dtype: 'I64', shape: [500] };
      return load(rebuild(j, data));
    }, /classifier\.1\.bias.*I64/);
    await row('weights', 'one misshaped tensor', () => {
      const j = structuredClone(json);
      j['classifier.1.weight'] = { ...j['classifier.1.weight'], shape: [1280, 1000] };
      return load(rebuild(j, data));
    }, /classifier\.1\.weight/);
    await row('weights', 'a .pth from bytes: what to do instead', () => load(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])), /tabtune export/);
    await row('weights', 'BF16 checkpoint: converted, trains', async () => {
      const j = structuredClone(json);
      const parts = [];
      let at = 0;
      const names = Object.keys(j).filter((k) => k !== '__metadata__').sort((a, b) => j[a].data_offsets[0] - j[b].data_offsets[0]);
      for (const k of names) {
        const [a, b] = j[k].data_offsets;
        let chunk = data.subarray(a, b);
        if (j[k].dtype === 'F32') {
          const f = new Uint16Array(new Uint32Array(chunk.slice().buffer).map((v) => v >>> 16));
          chunk = new Uint8Array(f.buffer);
          j[k] = { ...j[k], dtype: 'BF16' };
        }
        j[k] = { ...j[k], data_offsets: [at, at + chunk.length] };
        parts.push(chunk);
        at += chunk.length;
      }
      const all = new Uint8Array(at);
      let o = 0;
      for (const p of parts) { all.set(p, o); o += p.length; }
      const t = await FineTuner.create({ model: { kind: 'image', weights: rebuild(j, all), name: 'bf16' }, device: 'cpu' });
      await t.setDataset({ kind: 'image', items: digits });
      const report = await t.train({ head: { epochs: 1, batch_size: 2 }, finetune: null, val_fraction: 0.34 });
      t.terminate();
      return report.phases[0].losses;
    }, (losses) => losses.length > 0 && losses.every(Number.isFinite));

    // ---- images ----
    const fixture = (f) => `/tests/fixtures/bad/${f}`;
    const readable = ['baseline.jpg', 'progressive.jpg', 'cmyk.jpg', 'sixteen-bit.png', 'image.webp', 'image.bmp', 'exif-rotated.jpg', 'animated.gif'];
    const refused = { 'bomb.png': fixture('bomb.png'), 'empty.png': URL.createObjectURL(new Blob([])), 'notes.png': URL.createObjectURL(new Blob(['label,text\ncat,meow\n'])) };
    const items = [
      ...digits,
      ...readable.map((f, i) => ({ label: String(i % 2), name: f, source: fixture(f) })),
      ...Object.entries(refused).map(([name, source], i) => ({ label: String(i % 2), name, source })),
    ];
    await image.setDataset({ kind: 'image', items });
    const report = await image.train({ head: { epochs: 1, batch_size: 4 }, finetune: null, val_fraction: 0.2 }).catch((err) => ({ error: String(err?.message ?? err) }));
    const skipped = Object.fromEntries((report.skipped ?? []).map(([name, why]) => [name, why]));
    for (const f of readable) await row('images', f, async () => skipped[f], (why) => why === undefined);
    for (const f of Object.keys(refused)) await row('images', `${f} left out, named`, async () => skipped[f], (why) => typeof why === 'string' && why.length > 0);
    await row('images', 'the run went on with the rest', async () => report.phases?.[0]?.losses, (l) => Array.isArray(l) && l.length > 0 && l.every(Number.isFinite));

    // ---- tables and text ----
    const table = (name, data) => text.setDataset({ kind: 'text', data, name });
    const classes = (want) => (s) => JSON.stringify(s.classes) === JSON.stringify(want) && s.total === 4;
    await row('tables', 'one column', () => table('one.csv', 'text\nhello\nworld\n'), /one\.csv.*column|column.*one\.csv/);
    await row('tables', 'an empty file', () => table('empty.csv', ''), /empty\.csv: the file is empty/);
    await row('tables', 'labels with commas and quotes', () => table('q.csv', 'text,label\n"a, b","x, ""y"""\nc,z\nd,"x, ""y"""\ne,z\n'), classes(['x, "y"', 'z']));
    await row('tables', 'labels with emoji', () => table('e.csv', 'text,label\nyay,😀\nnay,😡\nwoo,😀\nboo,😡\n'), (s) => s.classes.length === 2 && s.classes.includes('😀'));
    await row('tables', 'labels with surrounding spaces', () => table('s.csv', 'text,label\na, pos\nb,pos \nc,neg\nd,  neg\n'), (s) => s.classes.length === 2 && s.classes.includes('pos') && s.classes.includes('neg'));
    await row('tables', 'CRLF', () => table('crlf.csv', 'text,label\r\nhi,a\r\nho,b\r\nha,a\r\nhu,b\r\n'), classes(['a', 'b']));
    await row('tables', 'a byte-order mark', () => table('bom.csv', '\uFEFFtext,label\nhi,a\nho,b\nha,a\nhu,b\n'), classes(['a', 'b']));
    await row('tables', 'TSV', () => table('t.tsv', 'text\tlabel\nhi, there\ta\nho\tb\nha\ta\nhu\tb\n'), classes(['a', 'b']));
    await row('tables', 'JSONL', () => table('j.jsonl', '{"text": "hi", "label": "a"}\n{"text": "ho", "label": "b"}\n{"text": "ha", "label": "a"}\n{"text": "hu", "label": "b"}\n'), classes(['a', 'b']));
    await table('good.csv', goodText);

    // ---- recipes ----
    const train = (recipe) => text.train(recipe);
    await row('recipes', 'NaN learning rate', () => train({ head: { lr: NaN } }), /head\.lr: NaN is not a finite number/);
    await row('recipes', 'infinite learning rate', () => train({ finetune: { backbone_lr: Infinity } }), /finetune\.backbone_lr: Infinity/);
    await row('recipes', 'negative learning rate', () => train({ head: { lr: -0.001 } }), /head\.lr.*-0\.001/);
    await row('recipes', 'epochs 0 for fine-tuning', () => train({ finetune: { epochs: 0 } }), /finetune\.epochs/);
    await row('recipes', 'an unknown field', () => train({ head: { learning_rate: 0.1 } }), /learning_rate/);
    await row('recipes', 'a batch larger than the data', () => train({ head: { batch_size: 500 } }), /head\.batch_size.*500/);
    await row('recipes', 'unfreeze out of range', () => train({ head: { epochs: 1, batch_size: 2 }, finetune: { epochs: 1, batch_size: 2, unfreeze: { last: 99 } } }), /finetune\.unfreeze.*99/);
    await row('recipes', 'a rate that diverges: the last good model kept, and it predicts', async () => {
      const report = await train({ head: { epochs: 2, batch_size: 2, optimizer: 'sgd', lr: 1e38 }, finetune: null, val_fraction: 0.34 });
      const ranked = await text.predict('lovely');
      return { diverged: report.phases[0].diverged, ranked: ranked.length };
    }, (v) => /became (NaN|inf|-inf) at head epoch \d, step \d.*kept .*lower head\.lr \(1e38\)/.test(v.diverged ?? '') && v.ranked === 2);
    // After every row: a good run.
    await row('recipes', 'then a good recipe trains', () => train({ head: { epochs: 1, batch_size: 2 }, finetune: null, val_fraction: 0.34 }).then((r) => r.phases[0].losses), (l) => l.length > 0);
    image.terminate();
    text.terminate();
    return rows;
  }, DIGITS);
  const failed = rows.filter((r) => !r.ok);
  const counts = {};
  for (const r of rows) counts[r.area] = (counts[r.area] ?? 0) + 1;
  for (const r of rows) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.area} / ${r.name}${r.error ? `: ${r.error}` : ''}${r.after ? ` (after: ${r.after})` : ''}${!r.ok && r.value ? ` -> ${r.value}` : ''}`);
  console.log(`rows: ${JSON.stringify(counts)}, ${rows.length} in all`);
  assert.deepEqual(failed.map((r) => `${r.area} / ${r.name}`), []);
  assertPrivate(seen);
});
