//! Whisper tiny.en on WebGPU against transformers' reference (issue 19), in headless Chromium
//! as tests/web.rs runs: `make test-webgpu-full`, not `make test`. SwiftShader, a GPU emulated
//! on the CPU, takes about 22 minutes for these two tests (every 30 s clip through the
//! encoder is minutes there), and the test module carries Whisper's 151 MB of weights; the
//! native port runs the same checks in `make test` (tests/whisper.rs).
#![cfg(target_arch = "wasm32")]

use tabtune::device::{self, DeviceChoice};
use wasm_bindgen_test::*;

mod common;

wasm_bindgen_test_configure!(run_in_browser);

fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}

#[path = "common/whisper.rs"]
mod whisper_reference;

/// Whisper tiny.en as `make assets` converts it (151 MB, compiled into this test module).
const WHISPER_TINY_EN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/whisper_tiny_en/model.safetensors"
));

/// The native port's checks (tests/whisper.rs) on WebGPU, one encoder pass (about 5 minutes on
/// SwiftShader): the first clip's encoder states and first-step logits to 1e-3, its greedy
/// tokens, and the reference training step's loss and the decoder's gradient norms on those
/// states to 1e-3.
#[wasm_bindgen_test]
async fn whisper_on_webgpu_matches_transformers() {
    use whisper_reference as reference;
    let gpu = webgpu().await;
    let t = clock();
    let model = reference::load(WHISPER_TINY_EN.to_vec(), &gpu);
    let (enc, logits, text, states) = reference::encoder_logits_and_greedy(&model, &gpu).await;
    log(&format!(
        "Whisper on WebGPU: encoder frames 0-9 rel {enc:.2e}, logits of 5 positions rel \
         {logits:.2e}, greedy tokens as the reference: {text:?} ({:.1} s)",
        clock() - t
    ));
    drop(model);
    let t = clock();
    let ad = gpu.autodiff();
    let model = reference::load(WHISPER_TINY_EN.to_vec(), &ad);
    for (name, value, want) in reference::training_step(&model, &ad, Some(states)).await {
        log(&format!(
            "Whisper decoder step on WebGPU: {name} {value:.7} vs {want:.7}"
        ));
    }
    log(&format!("Whisper decoder step: {:.1} s", clock() - t));
}

/// The rest of the native checks on WebGPU, about 17 minutes on SwiftShader: greedy tokens of
/// the four reference clips in one batch, and the training step through the encoder (the loss
/// and all 5 gradient norms).
#[wasm_bindgen_test]
async fn whisper_on_webgpu_full_reference() {
    use whisper_reference as reference;
    let gpu = webgpu().await;
    let t = clock();
    let model = reference::load(WHISPER_TINY_EN.to_vec(), &gpu);
    let texts = reference::greedy(&model, &reference::CLIPS, &gpu).await;
    log(&format!(
        "Whisper on WebGPU: greedy tokens of 4 clips as the reference ({:.1} s): {texts:?}",
        clock() - t
    ));
    drop(model);
    let t = clock();
    let ad = gpu.autodiff();
    let model = reference::load(WHISPER_TINY_EN.to_vec(), &ad);
    for (name, value, want) in reference::training_step(&model, &ad, None).await {
        log(&format!(
            "Whisper training step on WebGPU: {name} {value:.7} vs {want:.7}"
        ));
    }
    log(&format!("Whisper training step: {:.1} s", clock() - t));
}

async fn webgpu() -> burn::prelude::Device {
    device::select(DeviceChoice::Gpu)
        .await
        .unwrap_or_else(|err| panic!("no WebGPU device in this browser: {err}"))
        .device
}

fn clock() -> f64 {
    js_sys::Date::now() / 1000.0
}
