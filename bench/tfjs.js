// The TF.js contender of the tabtune benchmark, for bench/run.mjs: `window.tfbench` with the same
// calls as bench/tabtune.js (init, setup, rep), run on TF.js's WebGPU or WASM backend. The same
// five workloads as bench/torch_bench.py, built from TF.js's own pieces: MobileNetV2 with
// tf.layers (functional API), the all-MiniLM-L6-v2 encoder from tf ops and tf.variable weights.
// Weights are random: the benchmark times the work, not what the weights know.
//
// Where TF.js differs from the PyTorch contender (setup's `note` says so per workload):
//   - no AdamW in TF.js: plain Adam (no weight decay), with the same learning rates and
//     parameter groups (one Adam per group on one gradient);
//   - tf.layers runs every layer of a model in one mode, so the image step calls the backbone in
//     inference mode (BatchNorm's running statistics frozen, its gamma and beta still train) and
//     the classifier's dropout layer in training mode;
//   - the WASM backend has no kernels for the gradients of convolutions (Conv2DBackpropFilter,
//     DepthwiseConv2dNativeBackpropFilter/Input) nor of a gather (UnsortedSegmentSum):
//     image_step and text_step are refused there at setup unless the page is opened with
//     `&polyfill=1` (or init('wasm', {polyfill: true})), which registers those kernels for 'wasm'
//     written with ops it has (pad, slice, transpose, matmul, depthwise conv, scatterND);
//     `&fastmatmul=1` (or {fastMatMul: true}) also works around its BatchMatMul being 10-25x
//     slower with transposed operands (which every matmul gradient asks for).
//     `checkPolyfills()` compares them with the cpu backend's kernels. Stock TF.js is the default;
//   - the WASM heap is at most 4 GiB and TF.js keeps every activation for the backward pass:
//     training steps at batch 32 (and 16) abort there, after which the page is unusable;
//   - without cross-origin isolation (the bench server sends no COOP/COEP) the WASM backend
//     runs on one thread; init() reports SIMD and threads.
/* global tf */

const WASM_DIST = '/bench/node_modules/@tensorflow/tfjs-backend-wasm/dist/';
const params = new URLSearchParams(location.search);
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
const HEAD_BATCH = 32;
const WARMUP_FILES = 64;
const TRAINING_KERNELS = {
  image_step: ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter',
    'DepthwiseConv2dNativeBackpropInput'],
  text_step: ['UnsortedSegmentSum'],
};

let backendName = null;
let polyfilled = []; // kernels this page added to the backend (opt-in)
let wrapped = []; // kernels this page wrapped for speed (opt-in)
let current = null; // {rep: () => Promise<object>, dispose: () => void}

const seconds = (t0) => (performance.now() - t0) / 1000;

// Seeded integers and permutations (mulberry32), for labels, ids, splits and shuffles.
function rng(seed) {
  let a = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randInt = (r, lo, hi) => lo + Math.floor(r() * (hi - lo));
function shuffle(r, array) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

function memory() {
  const m = tf.memory();
  const out = {
    tfBytes: m.numBytes,
    tfTensors: m.numTensors,
    jsHeapBytes: performance.memory?.usedJSHeapSize ?? null,
  };
  if (m.numBytesInGPU != null) out.gpuBytes = m.numBytesInGPU;
  if (m.numBytesInGPUAllocated != null) out.gpuBytesAllocated = m.numBytesInGPUAllocated;
  return out;
}

// ---------------------------------------------------------------------------------------------
// WASM training kernels (opt-in): the gradients TF.js's WASM backend lacks, from ops it has.

function asTensor(t) {
  return t instanceof tf.Tensor ? t : tf.engine().makeTensorFromTensorInfo(t);
}

function convInfo(xShape, filterShape, strides, dilations, pad, rounding, depthwise) {
  const info = tf.backend_util.computeConv2DInfo(
    xShape, filterShape, strides, dilations ?? 1, pad, rounding, depthwise, 'channelsLast');
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error('polyfill: dilated convolutions are not supported');
  return info;
}

// The input of every filter tap (i, j): x padded as the convolution pads it, taken with the
// stride at the output's size, [n, outH, outW, c]. Strided views are made with reshapes and
// plain slices (the WASM backend's StridedSlice goes element by element): x padded to a
// multiple of the stride splits into stride x stride phases, and each tap is a slice of one.
function taps(x, info, each) {
  const { padInfo: p, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const [n, h, w, c] = x.shape;
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && oh === h && ow === w) return [each(x)];
  const hp = sh * Math.max(Math.ceil((h + p.top + p.bottom) / sh), oh + Math.floor((kh - 1) / sh));
  const wp = sw * Math.max(Math.ceil((w + p.left + p.right) / sw), ow + Math.floor((kw - 1) / sw));
  const xp = tf.pad(x, [[0, 0], [p.top, hp - h - p.top], [p.left, wp - w - p.left], [0, 0]]);
  const grid = sh === 1 && sw === 1 ? null : tf.reshape(xp, [n * (hp / sh), sh, wp / sw, sw * c]);
  const phases = [];
  for (let a = 0; a < Math.min(sh, kh); a++) {
    for (let b = 0; b < Math.min(sw, kw); b++) {
      phases[a * sw + b] = grid ? tf.reshape(tf.slice(grid, [0, a, 0, b * c], [n * (hp / sh), 1, wp / sw, c]), [n, hp / sh, wp / sw, c]) : xp;
    }
  }
  const phase = (a, b) => phases[a * sw + b];
  const out = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      // One tap at a time: its full-size temporaries go before the next is made.
      out.push(tf.tidy(() => each(tf.slice(phase(i % sh, j % sw), [0, Math.floor(i / sh), Math.floor(j / sw), 0], [n, oh, ow, c]))));
    }
  }
  return out;
}

const POLYFILLS = {
  Conv2DBackpropFilter: ({ inputs, attrs }) => tf.tidy(() => {
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
    if (dataFormat && dataFormat !== 'NHWC') throw new Error(`polyfill Conv2DBackpropFilter: ${dataFormat}`);
    const x = asTensor(inputs.x);
    const dy = asTensor(inputs.dy);
    const [kh, kw, ci, co] = filterShape;
    const info = convInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false);
    const dy2 = tf.reshape(dy, [-1, co]);
    // An explicit transpose: the WASM backend's matMul with transposeA is several times slower.
    const grads = taps(x, info, (s) => tf.matMul(tf.transpose(tf.reshape(s, [-1, ci])), dy2));
    return tf.reshape(grads.length === 1 ? grads[0] : tf.stack(grads), [kh, kw, ci, co]);
  }),

  DepthwiseConv2dNativeBackpropFilter: ({ inputs, attrs }) => tf.tidy(() => {
    const { strides, pad, dimRoundingMode, dilations, filterShape } = attrs;
    const x = asTensor(inputs.x);
    const dy = asTensor(inputs.dy);
    const [kh, kw, c, mult] = filterShape;
    if (mult !== 1) throw new Error('polyfill DepthwiseConv2dNativeBackpropFilter: channel multiplier != 1');
    const info = convInfo(x.shape, filterShape, strides, dilations, pad, dimRoundingMode, true);
    const grads = taps(x, info, (s) => tf.sum(tf.mul(s, dy), [0, 1, 2]));
    return tf.reshape(tf.stack(grads), [kh, kw, c, 1]);
  }),

  // dx = dy dilated by the stride, padded so that a valid stride-1 depthwise convolution with the
  // filter flipped in space gives back the input's size.
  DepthwiseConv2dNativeBackpropInput: ({ inputs, attrs }) => tf.tidy(() => {
    const { strides, pad, dimRoundingMode, dilations, inputShape } = attrs;
    const dy = asTensor(inputs.dy);
    const filter = asTensor(inputs.filter);
    const [kh, kw, , mult] = filter.shape;
    if (mult !== 1) throw new Error('polyfill DepthwiseConv2dNativeBackpropInput: channel multiplier != 1');
    const info = convInfo(inputShape, filter.shape, strides, dilations, pad, dimRoundingMode, true);
    const { padInfo: p, strideHeight: sh, strideWidth: sw } = info;
    let d = dy;
    const [n, oh, ow, c] = d.shape;
    if (sw > 1) d = tf.reshape(tf.stack([d, ...Array(sw - 1).fill(tf.zerosLike(d))], 3), [n, oh, ow * sw, c]);
    if (sh > 1) d = tf.reshape(tf.stack([d, ...Array(sh - 1).fill(tf.zerosLike(d))], 2), [n, oh * sh, ow * sw, c]);
    const [, h, w] = inputShape;
    const top = kh - 1 - p.top;
    const left = kw - 1 - p.left;
    if (top < 0 || left < 0) throw new Error('polyfill DepthwiseConv2dNativeBackpropInput: padding wider than the filter');
    let bottom = h + p.top - d.shape[1];
    let right = w + p.left - d.shape[2];
    if (bottom < 0 || right < 0) {
      d = tf.slice(d, [0, 0, 0, 0], [n, d.shape[1] + Math.min(bottom, 0), d.shape[2] + Math.min(right, 0), c]);
      bottom = Math.max(bottom, 0);
      right = Math.max(right, 0);
    }
    d = tf.pad(d, [[0, 0], [top, bottom], [left, right], [0, 0]]);
    return tf.depthwiseConv2d(d, tf.reverse(filter, [0, 1]), 1, 'valid');
  }),

  // The gradient of a gather: rows summed into their segments (scatterND sums duplicates).
  UnsortedSegmentSum: ({ inputs, attrs }) => tf.tidy(() => {
    const x = asTensor(inputs.x);
    const ids = asTensor(inputs.segmentIds);
    const inner = x.shape.slice(ids.rank);
    return tf.scatterND(tf.reshape(tf.cast(ids, 'int32'), [-1, 1]), tf.reshape(x, [ids.size, ...inner]),
      [attrs.numSegments, ...inner]);
  }),
};

function registerPolyfills(backend) {
  const added = [];
  for (const [kernelName, kernelFunc] of Object.entries(POLYFILLS)) {
    if (tf.getKernel(kernelName, backend) == null) {
      tf.registerKernel({ kernelName, backendName: backend, kernelFunc });
      added.push(kernelName);
    }
  }
  return added;
}

// Opt-in too (`&fastmatmul=1`): the WASM backend's BatchMatMul is 10-25x slower with
// transposeA or transposeB than on the same operands transposed first when there is one matrix
// (1024x384 by 384x1536: 40 ms plain, 500 ms transposeB, 1,100 ms transposeA), and matMul's
// gradient asks for exactly those. This wraps the kernel: such operands are transposed with the
// Transpose kernel and the original kernel runs untransposed.
function registerFastMatMul(backend) {
  const original = tf.getKernel('BatchMatMul', backend);
  if (!original || original.tabtuneFast) return [];
  const kernelFunc = (args) => {
    const { inputs: { a, b }, attrs } = args;
    const single = (t) => t.shape.slice(0, -2).reduce((x, y) => x * y, 1) === 1;
    if (!(attrs.transposeA || attrs.transposeB) || !single(a) || !single(b)) return original.kernelFunc(args);
    const temporary = [];
    const upright = (t, transposed) => {
      if (!transposed) return t;
      const perm = t.shape.map((_, i) => i);
      perm.push(...perm.splice(-2).reverse());
      const out = tf.transpose(asTensor(t), perm);
      temporary.push(out);
      return out;
    };
    try {
      return original.kernelFunc({
        ...args,
        inputs: { a: upright(a, attrs.transposeA), b: upright(b, attrs.transposeB) },
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      tf.dispose(temporary);
    }
  };
  tf.unregisterKernel('BatchMatMul', backend);
  tf.registerKernel({ ...original, kernelFunc, tabtuneFast: true });
  return ['BatchMatMul'];
}

function missingKernels(workload) {
  return (TRAINING_KERNELS[workload] ?? []).filter((k) => tf.getKernel(k, tf.getBackend()) == null);
}

// ---------------------------------------------------------------------------------------------
// MobileNetV2 (torchvision's mobilenet_v2, width 1.0) with tf.layers.

const MOBILENET_V2 = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
const TORCHVISION_PARAMS_1000 = 3504872;

function mobilenetV2(classes, seed = 0) {
  const L = tf.layers;
  const input = tf.input({ shape: [224, 224, 3] });
  // torchvision's initialisation, seeded: convs kaiming_normal(fan_out) (a depthwise kernel's
  // fan_out there is channels x 9, which TF.js calls its fan_in), BatchNorm 1 and 0, the
  // classifier normal(0, 0.01) and bias 0. BatchNorm2d(eps 1e-5, momentum 0.1 = Keras 0.9).
  let k = 0;
  const kaiming = (mode) => tf.initializers.varianceScaling({ scale: 2, mode, distribution: 'normal', seed: seed * 1000 + k++ });
  const bn = (x) => L.batchNormalization({ axis: -1, epsilon: 1e-5, momentum: 0.9 }).apply(x);
  const relu6 = (x) => L.reLU({ maxValue: 6 }).apply(x);
  const conv = (x, filters, kernelSize, strides) => L.conv2d({
    filters, kernelSize, strides, padding: 'same', useBias: false, kernelInitializer: kaiming('fanOut'),
  }).apply(x);
  const depthwise = (x, strides) => L.depthwiseConv2d({
    kernelSize: 3, strides, padding: 'same', useBias: false, depthwiseInitializer: kaiming('fanIn'),
  }).apply(x);

  let x = relu6(bn(conv(input, 32, 3, 2)));
  let cin = 32;
  for (const [t, c, n, s] of MOBILENET_V2) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      let y = x;
      if (t !== 1) y = relu6(bn(conv(y, cin * t, 1, 1)));
      y = relu6(bn(depthwise(y, stride)));
      y = bn(conv(y, c, 1, 1));
      if (stride === 1 && cin === c) y = L.add().apply([x, y]);
      x = y;
      cin = c;
    }
  }
  x = relu6(bn(conv(x, 1280, 1, 1)));
  const spatial = x.shape.slice(1, 3);
  if (spatial[0] !== 7 || spatial[1] !== 7) throw new Error(`MobileNetV2's last feature map is ${spatial.join('x')}, not 7x7`);
  const pooled = L.globalAveragePooling2d({}).apply(x);
  const dropout = L.dropout({ rate: 0.2 });
  const dense = L.dense({
    units: classes, kernelInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.01, seed: seed * 1000 + k++ }),
  });
  const logits = dense.apply(dropout.apply(pooled));
  const full = tf.model({ inputs: input, outputs: logits });
  const features = tf.model({ inputs: input, outputs: pooled });

  const count = (weights) => weights.reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1), 0);
  const trainable = count(full.trainableWeights);
  const expected = TORCHVISION_PARAMS_1000 - 1281 * 1000 + 1281 * classes;
  const info = {
    params: trainable,
    paramsTorchvision: expected,
    paramsMatch: trainable === expected,
    paramsIf1000Classes: trainable + 1281 * (1000 - classes),
    bnRunningStats: count(full.nonTrainableWeights),
    finalSpatial: spatial,
  };
  if (!info.paramsMatch) throw new Error(`MobileNetV2 has ${trainable} parameters, torchvision's has ${expected}`);
  const backboneVars = features.trainableWeights.map((w) => w.read());
  const headVars = dense.trainableWeights.map((w) => w.read());
  return {
    full, features, dropout, dense, backboneVars, headVars, info,
    // Disposing the full model disposes every layer once (the features model shares them).
    dispose: () => full.dispose(),
  };
}

// A tf.variable of `init`, which is then released (tf.variable keeps its own reference).
function variable(init) {
  const v = tf.variable(init);
  init.dispose();
  return v;
}

const oneHot = (values, classes) => tf.tidy(() => tf.oneHot(tf.tensor1d(values, 'int32'), classes).toFloat());

function softmaxLoss(labels, logits) {
  return tf.losses.softmaxCrossEntropy(labels, logits);
}

// One optimiser step with one Adam per group of variables (as the PyTorch contender's param
// groups), gradients computed once. Resolves to the loss read back.
async function step(lossFn, groups) {
  const { value, grads } = tf.variableGrads(lossFn, groups.flatMap((g) => g.vars));
  for (const g of groups) {
    const mine = {};
    for (const v of g.vars) mine[v.name] = grads[v.name];
    g.optimizer.applyGradients(mine);
  }
  tf.dispose(grads);
  const loss = (await value.data())[0];
  value.dispose();
  return loss;
}

function imageWorkload(spec, training) {
  const t0 = performance.now();
  const model = mobilenetV2(spec.classes ?? 10, spec.seed);
  const images = tf.randomNormal([spec.batch, 224, 224, 3], 0, 1, 'float32', spec.seed);
  const r = rng(spec.seed + 1);
  const labelValues = Array.from({ length: spec.batch }, () => randInt(r, 0, spec.classes ?? 10));
  const labels = oneHot(labelValues, spec.classes ?? 10);
  const tensors = [images, labels];
  const dispose = () => { tf.dispose(tensors); groups?.forEach((g) => g.optimizer.dispose()); model.dispose(); };
  let groups = null;
  let rep;
  if (!training) {
    rep = async () => {
      const y = tf.tidy(() => model.features.apply(images, { training: false }));
      await y.data();
      y.dispose();
      return {};
    };
  } else {
    groups = [
      { vars: model.headVars, optimizer: tf.train.adam(1e-3) },
      { vars: model.backboneVars, optimizer: tf.train.adam(1e-4) },
    ];
    const lossFn = () => {
      const pooled = model.features.apply(images, { training: false }); // BatchNorm frozen
      const logits = model.dense.apply(model.dropout.apply(pooled, { training: true }));
      return softmaxLoss(labels, logits);
    };
    rep = async () => ({ loss: await step(lossFn, groups) });
  }
  return {
    setupS: seconds(t0),
    info: {
      ...model.info,
      ...(training ? {
        note: 'Adam (TF.js 4.22 has no AdamW: no weight decay), head lr 1e-3 and backbone lr 1e-4 as two ' +
          'Adams on one gradient; BatchNorm in inference mode (running statistics frozen, gamma/beta ' +
          'train) and the classifier dropout (0.2) in training mode: the backbone is called with ' +
          'training:false, the dropout layer with training:true',
      } : {}),
    },
    rep: async () => ({ items: spec.batch, ...(await rep()) }),
    dispose,
  };
}

// ---------------------------------------------------------------------------------------------
// all-MiniLM-L6-v2's shape (BERT: 6 layers, 384 wide, 12 heads, 1536 feed-forward) from tf ops.

const MINILM = { vocab: 30522, positions: 512, types: 2, hidden: 384, layers: 6, heads: 12, ffn: 1536, eps: 1e-12 };

function minilm(seed) {
  const { vocab, positions, types, hidden: d, layers, ffn } = MINILM;
  let k = 0;
  const normal = (shape) => variable(tf.randomNormal(shape, 0, 0.02, 'float32', seed * 1000 + k++));
  const ones = (n) => variable(tf.ones([n]));
  const zeros = (n) => variable(tf.zeros([n]));
  const dense = (i, o) => ({ w: normal([i, o]), b: zeros(o) });
  const w = {
    word: normal([vocab, d]), pos: normal([positions, d]), type: normal([types, d]),
    lnG: ones(d), lnB: zeros(d),
    layers: Array.from({ length: layers }, () => ({
      q: dense(d, d), k: dense(d, d), v: dense(d, d), o: dense(d, d), ln1G: ones(d), ln1B: zeros(d),
      f1: dense(d, ffn), f2: dense(ffn, d), ln2G: ones(d), ln2B: zeros(d),
    })),
  };
  const vars = [];
  const collect = (o) => Object.values(o).forEach((v) => (v instanceof tf.Variable ? vars.push(v) : collect(v)));
  collect(w);
  return { w, vars, params: vars.reduce((s, v) => s + v.size, 0) };
}

const linear = (x, p) => tf.add(tf.matMul(x, p.w), p.b);
function layerNorm(x, g, b) {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, MINILM.eps))), g), b);
}
// GELU, erf form (BERT's "gelu"): TF.js has tf.erf (and its gradient) on WebGPU and WASM.
const gelu = (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
const maybeDropout = (x, rate, training) => (training ? tf.dropout(x, rate) : x);

// ids [b, t] int32, mask [b, t] float32 -> mean-pooled last hidden state [b, 384]. With
// `training`, BERT's dropouts (0.1): embeddings, attention probabilities, both residual branches.
function encode(model, ids, mask, training) {
  const { w } = model;
  const { hidden: d, heads } = MINILM;
  const [b, t] = ids.shape;
  const dh = d / heads;
  const emb = tf.add(tf.add(tf.gather(w.word, ids), tf.slice(w.pos, [0, 0], [t, d])), tf.slice(w.type, [0, 0], [1, d]));
  let h = maybeDropout(layerNorm(tf.reshape(emb, [b * t, d]), w.lnG, w.lnB), 0.1, training);
  const bias = tf.reshape(tf.mul(tf.sub(1, mask), -1e9), [b, 1, 1, t]);
  const split = (x) => tf.transpose(tf.reshape(x, [b, t, heads, dh]), [0, 2, 1, 3]);
  for (const l of w.layers) {
    const q = split(linear(h, l.q));
    const k = split(linear(h, l.k));
    const v = split(linear(h, l.v));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), bias);
    const probs = maybeDropout(tf.softmax(scores), 0.1, training);
    const context = tf.reshape(tf.transpose(tf.matMul(probs, v), [0, 2, 1, 3]), [b * t, d]);
    h = layerNorm(tf.add(maybeDropout(linear(context, l.o), 0.1, training), h), l.ln1G, l.ln1B);
    const f = linear(gelu(linear(h, l.f1)), l.f2);
    h = layerNorm(tf.add(maybeDropout(f, 0.1, training), h), l.ln2G, l.ln2B);
  }
  const m = tf.reshape(mask, [b, t, 1]);
  const summed = tf.sum(tf.mul(tf.reshape(h, [b, t, d]), m), 1);
  return tf.div(summed, tf.maximum(tf.sum(m, 1), 1e-9));
}

function textWorkload(spec, training) {
  const t0 = performance.now();
  const model = minilm(spec.seed);
  const r = rng(spec.seed + 1);
  const idValues = Array.from({ length: spec.batch * spec.tokens }, () => randInt(r, 1000, MINILM.vocab));
  const ids = tf.tensor2d(idValues, [spec.batch, spec.tokens], 'int32');
  const mask = tf.ones([spec.batch, spec.tokens]);
  const tensors = [ids, mask];
  let groups = null;
  let rep;
  const info = { params: model.params, gelu: 'erf' };
  if (!training) {
    rep = async () => {
      const y = tf.tidy(() => encode(model, ids, mask, false));
      await y.data();
      y.dispose();
      return {};
    };
  } else {
    const lim = 1 / Math.sqrt(MINILM.hidden);
    const head = { w: variable(tf.randomUniform([MINILM.hidden, 2], -lim, lim, 'float32', spec.seed + 2)), b: variable(tf.zeros([2])) };
    const labelValues = Array.from({ length: spec.batch }, () => randInt(r, 0, 2));
    const labels = oneHot(labelValues, 2);
    tensors.push(head.w, head.b, labels);
    groups = [
      { vars: [head.w, head.b], optimizer: tf.train.adam(1e-3) },
      { vars: model.vars, optimizer: tf.train.adam(5e-5) },
    ];
    const lossFn = () => softmaxLoss(labels, linear(tf.dropout(encode(model, ids, mask, true), 0.1), head));
    rep = async () => ({ loss: await step(lossFn, groups) });
    info.note = 'Adam (TF.js 4.22 has no AdamW: no weight decay), head lr 1e-3 and encoder lr 5e-5 as two ' +
      'Adams on one gradient; dropout 0.1 on the pooled vector and BERT\'s hidden dropouts (embeddings, ' +
      'attention probabilities, attention output, feed-forward output); GELU in its erf form (tf.erf)';
  }
  return {
    setupS: seconds(t0),
    info,
    rep: async () => ({ items: spec.batch, ...(await rep()) }),
    dispose: () => { tf.dispose(tensors); tf.dispose(model.vars); groups?.forEach((g) => g.optimizer.dispose()); },
  };
}

// ---------------------------------------------------------------------------------------------
// The head phase end to end: files -> frozen backbone features -> split -> a dense head.

async function decode(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return createImageBitmap(await res.blob());
}

// torchvision's Resize(256) (bilinear, shorter side 256) + CenterCrop(224) + ToTensor + Normalize.
function preprocess(bitmap) {
  return tf.tidy(() => {
    const img = tf.cast(tf.browser.fromPixels(bitmap, 3), 'float32');
    const [h, w] = img.shape;
    const [nh, nw] = h <= w ? [256, Math.floor((256 * w) / h)] : [Math.floor((256 * h) / w), 256];
    const resized = tf.image.resizeBilinear(img, [nh, nw], false, true);
    const top = Math.round((nh - 224) / 2);
    const left = Math.round((nw - 224) / 2);
    const crop = tf.slice(resized, [top, left, 0], [224, 224, 3]);
    return tf.div(tf.sub(tf.div(crop, 255), IMAGENET_MEAN), IMAGENET_STD);
  });
}

// tabtune's split (src/data/split.rs): per class round(n * valFraction) rows held out, at least
// one when the class has two or more.
function stratified(labels, classes, valFraction, seed) {
  const r = rng(seed);
  const train = [];
  const val = [];
  for (let c = 0; c < classes; c++) {
    const rows = shuffle(r, labels.flatMap((l, i) => (l === c ? [i] : [])));
    let nVal = Math.round(rows.length * valFraction);
    if (nVal === 0 && rows.length >= 2 && valFraction > 0) nVal = 1;
    val.push(...rows.slice(0, nVal));
    train.push(...rows.slice(nVal));
  }
  return { train: train.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

async function headPhase(model, spec, files, labels) {
  const t0 = performance.now();
  // (1) features, 32 images at a time; the next chunk is fetched and decoded while this one runs.
  const chunks = [];
  const load = (i) => Promise.all(files.slice(i, i + HEAD_BATCH).map(decode));
  let next = load(0);
  for (let i = 0; i < files.length; i += HEAD_BATCH) {
    const bitmaps = await next;
    if (i + HEAD_BATCH < files.length) next = load(i + HEAD_BATCH);
    chunks.push(tf.tidy(() => model.features.apply(tf.stack(bitmaps.map(preprocess)), { training: false })));
    bitmaps.forEach((b) => b.close());
  }
  const features = chunks.length === 1 ? chunks[0] : tf.concat(chunks);
  if (chunks.length > 1) tf.dispose(chunks);
  const n = features.shape[0];
  const probe = tf.slice(features, [n - 1, 0], [1, 1]);
  await probe.data();
  probe.dispose();
  const featuresS = seconds(t0);

  // (2) split, (3) a fresh dense head, (4) validation accuracy after each epoch.
  const classes = spec.classes;
  const { train, val } = stratified(labels, classes, spec.valFraction, spec.seed);
  const y = oneHot(labels, classes);
  const lim = 1 / Math.sqrt(1280); // PyTorch's nn.Linear initialisation
  const w = variable(tf.randomUniform([1280, classes], -lim, lim, 'float32', spec.seed));
  const b = variable(tf.randomUniform([classes], -lim, lim, 'float32', spec.seed + 1));
  const optimizer = tf.train.adam(1e-3);
  const valX = val.length ? tf.tidy(() => tf.gather(features, tf.tensor1d(val, 'int32'))) : null;
  const valY = val.length ? tf.tensor1d(val.map((i) => labels[i]), 'int32') : null;
  const r = rng(spec.seed + 2);
  let valAccuracy = null;
  try {
    for (let e = 0; e < spec.epochs; e++) {
      const order = shuffle(r, train.slice());
      for (let i = 0; i < order.length; i += HEAD_BATCH) {
        const idx = tf.tensor1d(order.slice(i, i + HEAD_BATCH), 'int32');
        const xb = tf.gather(features, idx);
        const yb = tf.gather(y, idx);
        optimizer.minimize(() => softmaxLoss(yb, tf.add(tf.matMul(xb, w), b)), false, [w, b]);
        tf.dispose([idx, xb, yb]);
      }
      if (valX) {
        const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(tf.add(tf.matMul(valX, w), b), 1), valY), 'float32')));
        valAccuracy = (await acc.data())[0];
        acc.dispose();
      }
    }
  } finally {
    tf.dispose([features, y, w, b, valX, valY].filter(Boolean));
    optimizer.dispose();
  }
  return { items: files.length, featuresS, valAccuracy, trainRows: train.length, valRows: val.length };
}

function headWorkload(spec) {
  const t0 = performance.now();
  if (!Array.isArray(spec.files) || !Array.isArray(spec.labels) || spec.files.length !== spec.labels.length) {
    throw new Error('head_phase needs files and labels of the same length');
  }
  const model = mobilenetV2(spec.classes, spec.seed);
  return {
    setupS: seconds(t0),
    info: { ...model.info, note: 'Adam (TF.js 4.22 has no AdamW: no weight decay), lr 1e-3; backbone in inference mode' },
    warmup: () => headPhase(model, spec, spec.files.slice(0, WARMUP_FILES), spec.labels.slice(0, WARMUP_FILES)),
    rep: () => headPhase(model, spec, spec.files, spec.labels),
    dispose: () => model.dispose(),
  };
}

const WORKLOADS = {
  image_features: (spec) => imageWorkload(spec, false),
  image_step: (spec) => imageWorkload(spec, true),
  text_features: (spec) => textWorkload(spec, false),
  text_step: (spec) => textWorkload(spec, true),
  head_phase: headWorkload,
};

// ---------------------------------------------------------------------------------------------

async function adapterInfo() {
  const fromBackend = tf.backend()?.adapterInfo;
  try {
    const adapter = await navigator.gpu?.requestAdapter();
    const info = adapter?.info ?? (await adapter?.requestAdapterInfo?.());
    if (info) {
      return { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
    }
  } catch {
    // fall through to what the backend kept
  }
  return fromBackend ? { vendor: fromBackend.vendor, architecture: fromBackend.architecture } : null;
}

// Every call rejects with an Error saying which call failed and why. When the WASM module
// aborts (out of its heap, at most 4 GiB: TF.js keeps every activation for the backward pass)
// it cannot run again: later calls say so at once and the page has to be opened anew.
let broken = null;
function failing(what, fn) {
  return async (...args) => {
    if (broken) throw new Error(`tfbench ${what}: ${broken}`);
    try {
      return await fn(...args);
    } catch (err) {
      let message = err?.message ?? String(err);
      if (backendName === 'wasm' && (err instanceof WebAssembly.RuntimeError || /Aborted\(/.test(message))) {
        const held = `${(tf.memory().numBytes / 2 ** 30).toFixed(2)} GiB held by TF.js`;
        message += ` (the WASM module aborted, its heap is at most 4 GiB: out of memory? ${held})`;
        broken = `the WASM backend aborted in an earlier call (${message}); open a new page`;
      }
      throw new Error(`tfbench ${what}: ${message}`);
    }
  };
}

window.tfbench = {
  init: failing('init', async (backend = params.get('backend'), options = {}) => {
    if (backend !== 'webgpu' && backend !== 'wasm') throw new Error(`unknown backend ${backend} (webgpu or wasm)`);
    if (backendName && backendName !== backend) throw new Error(`already on ${backendName}: open a new page for ${backend}`);
    if (backend === 'wasm' && !backendName) tf.wasm.setWasmPaths(WASM_DIST);
    if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed: the ${backend} backend could not be initialised`);
    await tf.ready();
    backendName = backend;
    const flag = (name) => options[name] ?? ['1', 'true'].includes(params.get(name.toLowerCase()));
    if (flag('polyfill') && backend === 'wasm') polyfilled.push(...registerPolyfills(backend));
    if (flag('fastMatMul') && backend === 'wasm') wrapped.push(...registerFastMatMul(backend));
    const out = {
      backend: tf.getBackend(),
      version: tf.version.tfjs,
      versions: { ...tf.version },
      simd: null,
      threads: null,
      crossOriginIsolated: self.crossOriginIsolated ?? false,
      polyfilledKernels: polyfilled,
      wrappedKernels: wrapped,
      missingTrainingKernels: [...new Set(Object.keys(TRAINING_KERNELS).flatMap(missingKernels))],
    };
    if (backend === 'wasm') {
      out.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      out.threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      out.note = `TF.js WASM ${out.threads ? 'with' : 'without'} threads (the page is ${out.crossOriginIsolated ? '' : 'not '}cross-origin isolated), SIMD ${out.simd ? 'on' : 'off'}`;
    } else {
      out.adapter = await adapterInfo();
    }
    return out;
  }),

  setup: failing('setup', async (spec) => {
    if (!backendName) throw new Error('setup() before init()');
    if (current) {
      current.dispose();
      current = null;
    }
    const make = WORKLOADS[spec?.workload];
    if (!make) throw new Error(`unknown workload ${spec?.workload}`);
    const missing = missingKernels(spec.workload);
    if (missing.length) {
      throw new Error(`${spec.workload}: TF.js ${tf.version.tfjs}'s ${backendName} backend has no kernel ` +
        `${missing.join(', ')} (it cannot train this model); open the page with &polyfill=1 to use ` +
        'kernels written with TF.js ops');
    }
    const full = { batch: 32, tokens: 128, classes: 10, epochs: 10, valFraction: 0.2, seed: 0, ...spec };
    const w = make(full);
    const t0 = performance.now();
    try {
      if (spec.warm !== false) await (w.warmup ?? w.rep)(); // `warm: false`: no warm-up (as tabtune.js)
    } catch (err) {
      w.dispose();
      throw err;
    }
    current = w;
    return {
      workload: spec.workload,
      setupS: w.setupS,
      warmupS: seconds(t0),
      ...w.info,
      ...(polyfilled.length ? { polyfilledKernels: polyfilled } : {}),
      ...(wrapped.length ? { wrappedKernels: wrapped } : {}),
      memory: memory(),
    };
  }),

  rep: failing('rep', async () => {
    if (!current) throw new Error('rep() before a successful setup()');
    const t0 = performance.now();
    const out = await current.rep();
    return { seconds: seconds(t0), ...out, memory: memory() };
  }),

  // Disposes the current workload; resolves to what is left (tensors should be 0 but for the
  // backend's own).
  teardown: failing('teardown', async () => {
    current?.dispose();
    current = null;
    return { memory: memory() };
  }),

  // The WASM kernels above (or the backend's own) against the cpu backend's, on small random
  // cases: the largest absolute difference of each.
  // (WASM only: switching a page away from WebGPU and back loses its device.)
  checkPolyfills: failing('checkPolyfills', async () => {
    const back = tf.getBackend();
    if (back !== 'wasm') throw new Error(`the polyfills are for the wasm backend, this page is on ${back}`);
    const cases = {
      conv3x3s2: (x, f) => tf.grads((a, k) => tf.sum(tf.mul(tf.conv2d(a, k, 2, 'same'), 1.5)))([x, f.conv]),
      conv1x1: (x, f) => tf.grads((a, k) => tf.sum(tf.square(tf.conv2d(a, k, 1, 'same'))))([x, f.conv1]),
      depthwiseS2: (x, f) => tf.grads((a, k) => tf.sum(tf.square(tf.depthwiseConv2d(a, k, 2, 'same'))))([x, f.dw]),
      depthwiseS1: (x, f) => tf.grads((a, k) => tf.sum(tf.square(tf.depthwiseConv2d(a, k, 1, 'same'))))([x, f.dw]),
      depthwiseOdd: (x, f) => tf.grads((a, k) => tf.sum(tf.square(tf.depthwiseConv2d(a, k, 2, 'same'))))([tf.slice(x, [0, 0, 0, 0], [2, 9, 7, 4]), f.dw]),
      gather: (x, f) => tf.grads((e) => tf.sum(tf.square(tf.gather(e, f.ids))))([f.emb]),
      matMul: (x, f) => tf.grads((a, w) => tf.sum(tf.square(tf.matMul(a, w))))([tf.reshape(x, [50, 16]), f.emb.slice([0, 0], [16, 8])]),
      matMulT: (x, f) => [tf.matMul(tf.reshape(x, [1, 16, 50]), tf.reshape(f.emb, [1, 8, 50]), false, true), tf.matMul(f.emb, tf.reshape(x, [50, 16]), true, false)],
    };
    const run = () => {
      const x = tf.randomNormal([2, 10, 10, 4], 0, 1, 'float32', 1);
      const f = {
        conv: tf.randomNormal([3, 3, 4, 6], 0, 1, 'float32', 2),
        conv1: tf.randomNormal([1, 1, 4, 6], 0, 1, 'float32', 3),
        dw: tf.randomNormal([3, 3, 4, 1], 0, 1, 'float32', 4),
        emb: tf.randomNormal([50, 8], 0, 1, 'float32', 5),
        ids: tf.tensor1d([3, 7, 3, 49, 0, 7, 7], 'int32'),
      };
      const out = {};
      for (const [name, fn] of Object.entries(cases)) out[name] = tf.tidy(() => fn(x, f)).map((g) => { const a = g.dataSync(); g.dispose(); return a; });
      tf.dispose([x, ...Object.values(f)]);
      return out;
    };
    await tf.setBackend('cpu');
    const expected = run();
    await tf.setBackend(back);
    const got = run();
    const diff = {};
    for (const name of Object.keys(cases)) {
      diff[name] = Math.max(...expected[name].map((e, i) => Math.max(...e.map((v, j) => Math.abs(v - got[name][i][j])))));
    }
    return { backend: back, maxAbsDiff: diff };
  }),
};
