//! Reference data shared by the native and the browser tests. Everything is compiled in with
//! `include_bytes!`, so the same code runs where there is no file system (wasm).
#![allow(dead_code)] // each test binary uses its own part of this module

use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::data::image::{IMAGENET_MEAN, IMAGENET_STD, rgb8_to_chw};

pub const INPUTS_U8_NHWC: &[u8] = include_bytes!("../fixtures/mobilenet_v2/inputs_u8_nhwc.npy");
pub const LOGITS: &[u8] = include_bytes!("../fixtures/mobilenet_v2/mobilenet_v2_logits.npy");
pub const FEATURES: &[u8] =
    include_bytes!("../fixtures/mobilenet_v2/mobilenet_v2_features1280.npy");
pub const TRAIN_STEP: &str =
    include_str!("../fixtures/mobilenet_v2/mobilenet_v2_train_step_reference.json");

/// A C-order little-endian .npy (version 1) of `descr`: (shape, raw data bytes). The reference
/// arrays are all of this kind; a dev-dependency for it would change cargo's feature
/// unification and rebuild burn for the tests.
pub fn npy_raw<'a>(bytes: &'a [u8], descr: &str) -> (Vec<usize>, &'a [u8]) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "not a version-1 .npy");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains(&format!("'descr': '{descr}'")), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    let dims = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = dims
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    (shape, &bytes[10 + len..])
}

pub fn npy_f32(bytes: &[u8]) -> Vec<f32> {
    let (_, raw) = npy_raw(bytes, "<f4");
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The three 224x224 reference crops, normalised with ImageNet statistics: `[3, 3, 224, 224]`.
pub fn inputs(device: &Device) -> Tensor<4> {
    let (shape, pixels) = npy_raw(INPUTS_U8_NHWC, "|u1");
    assert_eq!(shape, [3, 224, 224, 3]);
    let chw: Vec<f32> = pixels
        .chunks(224 * 224 * 3)
        .flat_map(|img| rgb8_to_chw(img, 224, 224, IMAGENET_MEAN, IMAGENET_STD))
        .collect();
    Tensor::from_data(TensorData::new(chw, [3, 3, 224, 224]), device)
}

/// ‖out − ref‖ / ‖ref‖.
pub fn rel_err(out: &[f32], reference: &[f32]) -> f64 {
    assert_eq!(out.len(), reference.len());
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let norm: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
    (diff / norm).sqrt()
}

/// Trainable parameters, as PyTorch's `sum(p.numel() for p in model.parameters())` counts them:
/// burn's `num_params` also counts BatchNorm's running mean and variance (buffers in PyTorch).
pub fn trainable_params<M: burn::store::ModuleSnapshot>(model: &M) -> usize {
    model
        .collect(None, None, false)
        .iter()
        .filter(|t| !t.name.ends_with("running_mean") && !t.name.ends_with("running_var"))
        .map(|t| t.shape.num_elements())
        .sum()
}

/// `assets/<rel>` (from `make assets`), which must exist.
pub fn asset(rel: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `make assets` first",
        path.display()
    );
    path
}

/// `per_class` demo digits (from `make assets`) of classes `0..classes`, copied into a fresh
/// folder of class subfolders named after `name`.
#[cfg(not(target_arch = "wasm32"))]
pub fn mnist_subset(name: &str, classes: usize, per_class: usize) -> std::path::PathBuf {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/datasets/mnist");
    assert!(
        assets.exists(),
        "{} is missing: run `make assets` first",
        assets.display()
    );
    let root = std::env::temp_dir().join(format!("tabtune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for digit in 0..classes {
        let dst = root.join(digit.to_string());
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(assets.join(digit.to_string()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, dst.join(f.file_name().unwrap())).unwrap();
        }
    }
    root
}

/// The largest difference between two safetensors files of the same layout.
pub fn max_diff(a: &[u8], b: &[u8]) -> f32 {
    let header = |x: &[u8]| u64::from_le_bytes(x[..8].try_into().unwrap()) as usize + 8;
    assert_eq!(a[..header(a)], b[..header(b)], "the files' layouts differ");
    a[header(a)..]
        .chunks_exact(4)
        .zip(b[header(b)..].chunks_exact(4))
        .filter(|(x, y)| x != y)
        .map(|(x, y)| {
            let x = f32::from_le_bytes(x.try_into().unwrap());
            let y = f32::from_le_bytes(y.try_into().unwrap());
            if x.is_finite() && y.is_finite() {
                (x - y).abs()
            } else {
                f32::INFINITY
            }
        })
        .fold(0.0, f32::max)
}

/// The largest difference between two equally long lists of numbers.
#[allow(dead_code)]
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "the lists' lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// One of the speech_embedding reference clips (../shared/reference/speech_embedding):
/// int16 PCM at 16 kHz scaled to [-1, 1), the front end's dB output and post-processed mel
/// `[frames, 32]`, and onnxruntime's embeddings `[windows, 96]`.
pub struct SpeechClip {
    pub name: &'static str,
    pub pcm: Vec<f32>,
    pub mel_raw: Vec<f32>,
    pub mel: Vec<f32>,
    pub emb: Vec<f32>,
}

macro_rules! speech_clip {
    ($name:literal) => {
        SpeechClip {
            name: $name,
            pcm: {
                let (_, raw) = npy_raw(
                    include_bytes!(concat!("../fixtures/speech_embedding/pcm_", $name, ".npy")),
                    "<i2",
                );
                raw.chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                    .collect()
            },
            mel_raw: npy_f32(include_bytes!(concat!(
                "../fixtures/speech_embedding/mel_raw_",
                $name,
                ".npy"
            ))),
            mel: npy_f32(include_bytes!(concat!(
                "../fixtures/speech_embedding/mel_",
                $name,
                ".npy"
            ))),
            emb: npy_f32(include_bytes!(concat!(
                "../fixtures/speech_embedding/emb_",
                $name,
                ".npy"
            ))),
        }
    };
}

/// The three reference clips: "Hey LiveKit", a negative, espeak-ng's "turn on the lights".
pub fn speech_clips() -> Vec<SpeechClip> {
    vec![
        speech_clip!("positive"),
        speech_clip!("negative"),
        speech_clip!("turn_on_the_lights"),
    ]
}

pub const MEL_FILTERBANK: &[u8] = include_bytes!("../fixtures/speech_embedding/mel_filterbank.npy");
pub const MEL_WINDOW: &[u8] = include_bytes!("../fixtures/speech_embedding/mel_window.npy");

/// The float32 tensors of a safetensors file, by name: (shape, values).
#[cfg(not(target_arch = "wasm32"))]
pub fn tensors(bytes: &[u8]) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(k, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (k, (v.shape().to_vec(), values))
        })
        .collect()
}

/// A session with the model folder `base` and the PEFT folder of an export's `files`
/// (`adapter/`) put onto it.
#[cfg(not(target_arch = "wasm32"))]
pub fn onto_base(base: &std::path::Path, files: &[(String, Vec<u8>)]) -> tabtune::session::Session {
    let file = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
    let with_adapter = tabtune::session::ModelFiles::open(base)
        .unwrap()
        .with_adapter(
            "adapter",
            std::str::from_utf8(file("adapter/adapter_config.json")).unwrap(),
            file("adapter/adapter_model.safetensors"),
        )
        .unwrap();
    let mut session = tabtune::session::Session::new(Device::flex());
    session.load(with_adapter).unwrap();
    session
}
