//! Browser tests: run by `wasm-bindgen-test-runner` in headless Chromium (see webdriver.json).
//! WebGPU there is SwiftShader; a missing adapter fails the test with the reason.
#![cfg(target_arch = "wasm32")]

use tabtune::data::{FeatureSet, features::SyntheticSpec};
use tabtune::device::{self, BackendKind, DeviceChoice};
use tabtune::train::{self, Control, Recipe};
use wasm_bindgen_test::*;

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
