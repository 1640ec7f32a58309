//! EfficientNet-Lite0 against PyTorch: ml-illustrated's port of Google's TF weights (converted
//! to safetensors by `make assets`) on the three reference images of ../shared/reference,
//! normalised as (u8 - 127) / 128, copied into tests/fixtures.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::data::image::rgb8_to_chw;
use tabtune::models::{EfficientNetLite0, efficientnet_lite};
use tabtune::weights::{Format, WeightSource, load_into};

mod common;
use common::{INPUTS_U8_NHWC, npy_f32, npy_raw, rel_err, trainable_params};

const INPUT_PM1: &[u8] =
    include_bytes!("fixtures/efficientnet_lite0/efficientnet_lite0_input_pm1_nchw.npy");
const LOGITS_PM1: &[u8] =
    include_bytes!("fixtures/efficientnet_lite0/efficientnet_lite0_logits_pm1.npy");

fn weights() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/models/efficientnet_lite0/model.safetensors");
    assert!(
        path.exists(),
        "{} is missing: run `make assets` first",
        path.display()
    );
    path
}

fn load(device: &Device) -> EfficientNetLite0 {
    let mut model = EfficientNetLite0::new(1000, device);
    let report = load_into(
        &mut model,
        &WeightSource::Path(weights()),
        &efficientnet_lite::weight_map(),
        &["num_batches_tracked"],
    )
    .unwrap();
    assert_eq!(report.format, Format::Safetensors);
    // 49 convs (stem, 15 expansions, 16 depthwise, 16 projections, head), 49 BNs x 4, fc x 2.
    assert_eq!(report.applied, 49 + 49 * 4 + 2);
    model
}

fn pm1_inputs(device: &Device) -> Tensor<4> {
    let (shape, _) = npy_raw(INPUT_PM1, "<f4");
    assert_eq!(shape, [3, 3, 224, 224]);
    Tensor::from_data(
        TensorData::new(npy_f32(INPUT_PM1), [3, 3, 224, 224]),
        device,
    )
}

#[test]
fn logits_match_pytorch() {
    let device = Device::flex();
    let model = load(&device);
    assert_eq!(trainable_params(&model), 4_652_008);
    let logits = model.forward(pm1_inputs(&device));
    assert_eq!(logits.dims(), [3, 1000]);
    let out: Vec<f32> = logits.into_data().iter::<f32>().collect();
    let err = rel_err(&out, &npy_f32(LOGITS_PM1));
    println!("efficientnet_lite0 logits relative error: {err:.2e}");
    assert!(err <= 1e-4, "logits relative error {err}");

    // BatchNorm folded into the convolutions (the inference copy) gives the same logits.
    let folded = model.folded().forward(pm1_inputs(&device));
    let folded: Vec<f32> = folded.into_data().iter::<f32>().collect();
    let err = rel_err(&folded, &npy_f32(LOGITS_PM1));
    println!("efficientnet_lite0 folded BatchNorm: logits relative error {err:.2e}");
    assert!(err <= 1e-4, "folded logits relative error {err}");
}

#[test]
fn mean_and_std_give_the_tflite_input_convention() {
    // The reference input is (u8 - 127) / 128 of the same three crops.
    let (shape, pixels) = npy_raw(INPUTS_U8_NHWC, "|u1");
    assert_eq!(shape, [3, 224, 224, 3]);
    let ours: Vec<f32> = pixels
        .chunks(224 * 224 * 3)
        .flat_map(|img| {
            rgb8_to_chw(
                img,
                224,
                224,
                efficientnet_lite::MEAN,
                efficientnet_lite::STD,
            )
        })
        .collect();
    let reference = npy_f32(INPUT_PM1);
    let worst = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-6, "largest input difference {worst}");
}

#[test]
fn same_padding_is_asymmetric_for_stride_two() {
    use efficientnet_lite::same_padding;
    assert_eq!(same_padding(224, 3, 2), (0, 1));
    assert_eq!(same_padding(56, 5, 2), (1, 2));
    assert_eq!(same_padding(225, 3, 2), (1, 1));
    assert_eq!(same_padding(14, 5, 1), (2, 2));
    assert_eq!(same_padding(7, 1, 1), (0, 0));
    // Any input size runs: 100 -> 50 -> 25 -> 13 -> 7 -> 4.
    let device = Device::flex();
    let model = EfficientNetLite0::new(5, &device);
    let out = model.forward(Tensor::zeros([1, 3, 100, 100], &device));
    assert_eq!(out.dims(), [1, 5]);
    assert_eq!(
        model
            .features(Tensor::zeros([2, 3, 64, 64], &device))
            .dims(),
        [2, efficientnet_lite::FEATURES]
    );
}

#[test]
fn a_truncated_file_is_refused_naming_it() {
    let dir = std::env::temp_dir().join(format!("tabtune-effnet-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truncated = dir.join("truncated-lite0.safetensors");
    let bytes = std::fs::read(weights()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let device = Device::flex();
    let mut model = EfficientNetLite0::new(1000, &device);
    let err = load_into(
        &mut model,
        &WeightSource::Path(truncated),
        &efficientnet_lite::weight_map(),
        &["num_batches_tracked"],
    )
    .unwrap_err()
    .to_string();
    std::fs::remove_dir_all(dir).ok();
    assert!(err.contains("truncated-lite0.safetensors"), "{err}");
}
