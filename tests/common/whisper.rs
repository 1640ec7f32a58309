//! Whisper tiny.en's checks against ../shared/reference/whisper_tiny_en (transformers, float32
//! CPU), one piece of code for the native test (tests/whisper.rs) and the browser's
//! (tests/web.rs, WebGPU): the encoder, the teacher-forced logits, greedy decoding of the four
//! reference clips, and one training step's loss and gradient norms. Each returns what it
//! measured and asserts the tolerance itself.
//! Declared by the test files that use it (`#[path]`): it compiles in files `make assets` makes.
#![allow(dead_code)]

use crate::common::{npy_f32, npy_raw, rel_err};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;
use tabtune::data::mel::{WHISPER_FRAMES, WhisperMel};
use tabtune::models::whisper::{Whisper, WhisperConfig};

pub const CLIPS: [&str; 4] = [
    "set_a_timer_for_ten_minutes",
    "the_patient_was_given_penicillin",
    "good_morning",
    "the_patient_was_given_amoxicillin",
];

const REFERENCE: &str = include_str!("../fixtures/whisper_tiny_en/reference.json");
pub const MEL_FILTERS: &[u8] = include_bytes!("../fixtures/whisper_tiny_en/mel_filters.npy");
pub const LOGMEL: &[u8] =
    include_bytes!("../fixtures/whisper_tiny_en/logmel_set_a_timer_for_ten_minutes.npy");
const ENCODER_FIRST10: &[u8] = include_bytes!(
    "../fixtures/whisper_tiny_en/encoder_last_hidden_first10_set_a_timer_for_ten_minutes.npy"
);
const LOGITS_FIRST5: &[u8] = include_bytes!(
    "../fixtures/whisper_tiny_en/decoder_logits_first5_set_a_timer_for_ten_minutes.npy"
);
/// The converted model's config and tokenizer (`make assets`, before the tests are built).
pub const CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/whisper_tiny_en/config.json"
));
pub const TOKENIZER: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/models/whisper_tiny_en/tokenizer.json"
));

pub fn reference() -> Value {
    serde_json::from_str(REFERENCE).unwrap()
}

pub fn config() -> WhisperConfig {
    WhisperConfig::from_json(CONFIG, "config.json").unwrap()
}

/// A reference clip's samples in [-1, 1] (int16 / 32768).
pub fn clip(name: &str) -> Vec<f32> {
    let bytes: &[u8] = match name {
        "set_a_timer_for_ten_minutes" => {
            include_bytes!("../fixtures/whisper_tiny_en/pcm_set_a_timer_for_ten_minutes.npy")
        }
        "the_patient_was_given_penicillin" => {
            include_bytes!("../fixtures/whisper_tiny_en/pcm_the_patient_was_given_penicillin.npy")
        }
        "good_morning" => include_bytes!("../fixtures/whisper_tiny_en/pcm_good_morning.npy"),
        "the_patient_was_given_amoxicillin" => {
            include_bytes!("../fixtures/whisper_tiny_en/pcm_the_patient_was_given_amoxicillin.npy")
        }
        other => panic!("no reference clip {other}"),
    };
    let (_, raw) = npy_raw(bytes, "<i2");
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect()
}

async fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data_async().await.unwrap().iter::<f32>().collect()
}

/// Log-mel input `[n, 80, 3000]` of `clips` (on the CPU, as the browser computes it too).
pub fn mels(clips: &[Vec<f32>], device: &Device) -> Tensor<3> {
    let front = WhisperMel::new(80);
    let n = clips.len();
    let v: Vec<f32> = clips.iter().flat_map(|c| front.features(c)).collect();
    Tensor::from_data(TensorData::new(v, [n, 80, WHISPER_FRAMES]), device)
}

/// The first clip through the model once: its encoder states (frames 0-9) and teacher-forced
/// logits of 5 positions (their relative errors, each at most 1e-3), then its greedy tokens
/// (the reference's) from the same states. Returns the two errors, the text and the states
/// (read back, for [`training_step`]).
pub async fn encoder_logits_and_greedy(
    model: &Whisper,
    device: &Device,
) -> (f64, f64, String, Vec<f32>) {
    let r = reference();
    let encoder = model.encode(mels(&[clip(CLIPS[0])], device));
    assert_eq!(encoder.dims(), [1, 1500, 384]);
    let first10 = values(encoder.clone().narrow(1, 0, 10)).await;
    let enc = rel_err(&first10, &npy_f32(ENCODER_FIRST10));
    assert!(enc <= 1e-3, "encoder rel {enc}");
    let ids: Vec<i64> = r["decoder_input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 5]), device);
    let logits = values(model.logits(encoder.clone(), tokens)).await;
    let rel = rel_err(&logits, &npy_f32(LOGITS_FIRST5));
    assert!(rel <= 1e-3, "logits rel {rel}");
    let states = values(encoder.clone()).await;
    let text = check_greedy(model, encoder, &[CLIPS[0]]).await.remove(0);
    (enc, rel, text, states)
}

/// Greedy decoding (KV cache) of `clips`, in one batch: each one's tokens must be the
/// reference's, and its text too. Returns the texts.
pub async fn greedy(model: &Whisper, clips: &[&str], device: &Device) -> Vec<String> {
    let batch: Vec<Vec<f32>> = clips.iter().map(|c| clip(c)).collect();
    check_greedy(model, model.encode(mels(&batch, device)), clips).await
}

/// `encoder` states of `clips` decoded greedily: the reference's tokens and texts.
async fn check_greedy(model: &Whisper, encoder: Tensor<3>, clips: &[&str]) -> Vec<String> {
    let r = reference();
    let generated = model.generate(&config(), encoder, 64).await.unwrap();
    let tokenizer = tokenizers::Tokenizer::from_bytes(TOKENIZER).unwrap();
    let mut texts = Vec::new();
    for (name, got) in clips.iter().zip(&generated) {
        let want: Vec<u32> = r["clips"][name]["greedy_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let text = tokenizer.decode(got, true).unwrap();
        assert_eq!(got, &want, "{name}: {text:?}");
        assert_eq!(text, r["clips"][name]["greedy_text"].as_str().unwrap());
        texts.push(text);
    }
    texts
}

/// The reference training step on the first clip (teacher-forced, no smoothing) on `device`
/// (an autodiff one): (name, value, reference) for the loss and 5 gradient norms, each within
/// 1e-3 relative. Given the clip's encoder `states`, the encoder is not run: the loss and the
/// decoder's 3 gradient norms are checked (they do not depend on the encoder's backward pass).
pub async fn training_step(
    model: &Whisper,
    device: &Device,
    states: Option<Vec<f32>>,
) -> Vec<(String, f64, f64)> {
    let step = &reference()["train_step"];
    let ids = |key: &str| -> Vec<i64> {
        step[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    };
    let (inputs, labels) = (ids("decoder_input_ids"), ids("labels"));
    let len = inputs.len();
    let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, len]), device);
    let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [1, len]), device);
    let encoder = match &states {
        Some(v) => Tensor::from_data(TensorData::new(v.clone(), [1, 1500, 384]), device),
        None => model.encode(mels(&[clip(CLIPS[0])], device)),
    };
    let loss = model.loss(encoder, inputs, labels, 0.0);
    let value = values(loss.clone()).await[0] as f64;
    let mut out = vec![("loss".to_string(), value, step["loss"].as_f64().unwrap())];
    let grads = loss.backward();
    let (enc, dec) = (&model.model.encoder, &model.model.decoder);
    let got = [
        (
            "model.encoder.conv1.weight",
            enc.conv1.weight.grad(&grads).map(|t| t.flatten::<1>(0, 2)),
        ),
        (
            "model.encoder.layers.0.self_attn.q_proj.weight",
            enc.layers[0]
                .self_attn
                .q_proj
                .weight
                .grad(&grads)
                .map(|t| t.flatten::<1>(0, 1)),
        ),
        (
            "model.decoder.layers.0.encoder_attn.k_proj.weight",
            dec.layers[0]
                .encoder_attn
                .k_proj
                .weight
                .grad(&grads)
                .map(|t| t.flatten::<1>(0, 1)),
        ),
        (
            "model.decoder.layers.3.fc2.weight",
            dec.layers[3]
                .fc2
                .weight
                .grad(&grads)
                .map(|t| t.flatten::<1>(0, 1)),
        ),
        // The tied output projection's gradient is in it (as in the reference).
        (
            "model.decoder.embed_tokens.weight",
            dec.embed_tokens
                .weight
                .grad(&grads)
                .map(|t| t.flatten::<1>(0, 1)),
        ),
    ];
    for (name, grad) in got {
        if states.is_some() && name.starts_with("model.encoder") {
            continue;
        }
        let v = values(grad.expect("no gradient")).await;
        let norm = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        out.push((
            name.to_string(),
            norm,
            step["grad_l2_norms"][name].as_f64().unwrap(),
        ));
    }
    for (name, value, want) in &out {
        let rel = (value - want).abs() / want;
        assert!(rel <= 1e-3, "{name}: {value} vs {want} (rel {rel:.1e})");
    }
    out
}

/// The converted model (`make assets`) from its bytes on `device`.
pub fn load(weights: Vec<u8>, device: &Device) -> Whisper {
    let source = tabtune::weights::WeightSource::Bytes {
        name: "model.safetensors".into(),
        bytes: weights,
    };
    Whisper::load(&config(), &source, device).unwrap().0
}
