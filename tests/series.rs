//! The two series networks against their references: humanactivity's Keras Conv1D
//! (../shared/reference/har_conv1d: Keras 3 on the package's HDF5) and RIANN's GRUs
//! (scripts/riann_reference.py: onnxruntime on the package's ONNX file), loaded from the
//! safetensors + config.json `make assets` converts, through the config-described network.
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoints from assets/

use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::models::series::{Flowing, SeriesModel};
use tabtune::weights::WeightSource;

mod common;
use common::{asset, npy_f32, rel_err};

const HAR_INPUT: &[u8] = include_bytes!("fixtures/har_conv1d/har_input_normalized.npy");
const HAR_LOGITS: &[u8] = include_bytes!("fixtures/har_conv1d/har_output_logits.npy");
const RIANN_INPUT: &[u8] = include_bytes!("fixtures/riann/input.npy");
const RIANN_OUTPUT: &[u8] = include_bytes!("fixtures/riann/output.npy");

fn model(name: &str, device: &Device) -> SeriesModel {
    let dir = asset(&format!("models/{name}"));
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let weights = WeightSource::Path(dir.join("model.safetensors"));
    SeriesModel::load(&weights, (&config, "config.json"), device).unwrap()
}

/// `[n, time, channels]` values as the network's `[n, channels, time]` input.
fn channels_first(values: Vec<f32>, n: usize, time: usize, channels: usize, device: &Device) -> Tensor<3> {
    Tensor::<3>::from_data(TensorData::new(values, [n, time, channels]), device).swap_dims(1, 2)
}

#[test]
fn har_conv1d_matches_keras() {
    let device = Device::flex();
    let m = model("har_conv1d", &device);
    let x = channels_first(npy_f32(HAR_INPUT), 4, 90, 3, &device);
    let Flowing::Window(logits) = m.net.forward(x) else {
        panic!("a window classifier")
    };
    let got = logits.into_data().try_to_vec::<f32>().unwrap();
    let rel = rel_err(&got, &npy_f32(HAR_LOGITS));
    println!("har_conv1d logits rel {rel:.4e}");
    assert!(rel <= 1e-4, "logits rel {rel:e}");
    assert_eq!(m.labels().unwrap()[5], "WALKING");
}

#[test]
fn riann_matches_onnxruntime() {
    let device = Device::flex();
    let m = model("riann", &device);
    let (mean, std) = (&m.config.input.mean, &m.config.input.std);
    let raw = npy_f32(RIANN_INPUT);
    let normalised: Vec<f32> = raw
        .iter()
        .enumerate()
        .map(|(i, v)| (v - mean[i % 7]) / std[i % 7])
        .collect();
    let x = channels_first(normalised, 2, 150, 7, &device);
    let Flowing::Steps(q) = m.net.forward(x) else {
        panic!("a per-step network")
    };
    let got = q.swap_dims(1, 2).into_data().try_to_vec::<f32>().unwrap();
    let rel = rel_err(&got, &npy_f32(RIANN_OUTPUT));
    println!("riann quaternions rel {rel:.4e}");
    assert!(rel <= 1e-4, "quaternions rel {rel:e}");
}
