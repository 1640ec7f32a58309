//! Browser tests: run by `wasm-bindgen-test-runner` in headless Chromium (see webdriver.json).
//! WebGPU there is SwiftShader; a missing adapter fails the test with the reason.
#![cfg(target_arch = "wasm32")]

use tabtune::data::{FeatureSet, features::SyntheticSpec};
use tabtune::device::{self, BackendKind, DeviceChoice};
use tabtune::models::{MobileNetV2, mobilenet_v2};
use tabtune::train::{self, Control, Recipe};
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
