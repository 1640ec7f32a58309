//! Text fine-tuning natively: tokenisation against the PyTorch reference, the whole model
//! (tokenizer -> encoder -> pooling) against it, a short two-phase run on rotten-tomatoes
//! snippets, the Hugging Face export and its reload, and the inputs that must be refused.
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoint and data from assets/

use std::path::PathBuf;

use burn::prelude::*;
use tabtune::data::{Columns, TextSet, TextTokenizer};
use tabtune::models::bert::{l2_normalize, mean_pool};
use tabtune::models::{TextModel, TextOptions};
use tabtune::train::{self, Control, Modality, Recipe};
use tabtune::weights::{WeightSource, inspect};

mod common;
use common::{npy_f32, rel_err};

fn minilm() -> PathBuf {
    common::asset("models/all-MiniLM-L6-v2")
}

const REFERENCE: &str = include_str!("fixtures/all-minilm-l6-v2/reference.json");
const HIDDEN: &[u8] = include_bytes!("fixtures/all-minilm-l6-v2/ref_last_hidden_state.npy");
const EMBEDDINGS: &[u8] = include_bytes!("fixtures/all-minilm-l6-v2/ref_sentence_embeddings.npy");

fn reference() -> (Vec<String>, Vec<i64>, Vec<i64>) {
    let r: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    let flat = |key: &str| -> Vec<i64> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
            .collect()
    };
    let sentences = r["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    (sentences, flat("input_ids"), flat("attention_mask"))
}

fn model(options: Option<&TextOptions>) -> TextModel {
    TextModel::open(&minilm(), options, &Device::flex()).unwrap()
}

#[test]
fn token_ids_equal_the_reference() {
    let (sentences, ids, mask) = reference();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(minilm().join("config.json")).unwrap())
            .unwrap();
    let tokenizer = TextTokenizer::from_bytes(
        &std::fs::read(minilm().join("tokenizer.json")).unwrap(),
        "tokenizer.json",
        config["vocab_size"].as_u64().unwrap() as usize,
        512,
        128,
    )
    .unwrap();
    let tokens = tokenizer.encode(&sentences).unwrap();
    assert_eq!((tokens.batch, tokens.len), (3, 15));
    assert_eq!(tokens.ids, ids);
    assert_eq!(tokens.mask, mask);
    assert!(tokens.types.iter().all(|&t| t == 0));
    assert_eq!(tokens.truncated, 0);
    // Cut at 8: [CLS] + 6 tokens + [SEP], every row counted.
    let short = TextTokenizer::from_bytes(&tokenizer.json, "tokenizer.json", 30522, 512, 8)
        .unwrap()
        .encode(&sentences)
        .unwrap();
    assert_eq!(short.len, 8);
    assert_eq!(short.truncated, 3);
    assert_eq!(
        &short.ids[..8],
        &[101, 2023, 3185, 2001, 7078, 6919, 1010, 102]
    );
}

#[test]
fn the_model_from_text_matches_pytorch() {
    let (sentences, _, _) = reference();
    let model = model(None);
    let device = Device::flex();
    let tokens = model.tokenizer.encode(&sentences).unwrap();
    let (ids, mask, types) = tokens.tensors(&device);
    let hidden = model.net.bert.forward(ids, mask.clone(), types);
    let embeddings = l2_normalize(mean_pool(hidden.clone(), mask));
    let hidden: Vec<f32> = hidden.into_data().try_to_vec().unwrap();
    let embeddings: Vec<f32> = embeddings.into_data().try_to_vec().unwrap();
    let (h, e) = (
        rel_err(&hidden, &npy_f32(HIDDEN)),
        rel_err(&embeddings, &npy_f32(EMBEDDINGS)),
    );
    println!("from text: last_hidden_state rel err {h:.2e}, sentence embeddings {e:.2e}");
    assert!(h <= 1e-4 && e <= 1e-4);
    // The pipeline's own pooled vector (mean, normalised) is the same embedding.
    let options = TextOptions {
        normalize: true,
        ..Default::default()
    };
    let pooled: Vec<f32> = TextModel::open(&minilm(), Some(&options), &device)
        .unwrap()
        .net
        .features(&tokens, &device)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(rel_err(&pooled, &npy_f32(EMBEDDINGS)) <= 1e-4);
}

/// `per_class` rows of each label of the demo set, the first ones in file order.
fn demo_subset(per_class: usize) -> TextSet {
    let path = common::asset("datasets/rotten_tomatoes.csv");
    let full = TextSet::open(&path, &Columns::default()).unwrap();
    assert_eq!(full.classes, ["fresh", "rotten"]);
    let mut taken = [0usize; 2];
    let rows: Vec<(String, String, String)> = (0..full.len())
        .filter(|&i| {
            let l = full.labels[i] as usize;
            taken[l] += 1;
            taken[l] <= per_class
        })
        .map(|i| {
            (
                full.origins[i].clone(),
                full.texts[i].clone(),
                full.classes[full.labels[i] as usize].clone(),
            )
        })
        .collect();
    TextSet::from_rows("demo subset", rows, Vec::new()).unwrap()
}

/// Class probabilities of two reviews under `model` (CPU), flattened.
fn probabilities(model: &TextModel) -> Vec<f32> {
    let texts = ["a gorgeous, witty, seductive movie.", "dull and lifeless."];
    futures_lite::future::block_on(train::text::predict(
        &model.net,
        &model.tokenizer,
        &texts,
        8,
        &Device::flex(),
    ))
    .unwrap()
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn two_phases_then_export_and_reload() {
    let set = demo_subset(24);
    let recipe = Recipe::from_json_for(
        r#"{"head": {"epochs": 20, "batch_size": 8, "lr": 0.01},
            "finetune": {"epochs": 1, "batch_size": 8, "unfreeze": {"last": 1}},
            "val_fraction": 0.25, "text": {"max_length": 32}}"#,
        Modality::Text,
    )
    .unwrap();
    let device = Device::flex();
    let model = model(Some(&recipe.text));
    let before = model.net.bert.encoder.layer[0]
        .attention
        .self_attn
        .query
        .weight
        .val();
    let mut events = Vec::new();
    let (tuned, report) = futures_lite::future::block_on(train::finetune_text(
        model,
        &set,
        None,
        &recipe,
        Default::default(),
        16,
        &device,
        &mut |e| {
            events.push(e.clone());
            Control::Continue
        },
    ))
    .unwrap();
    assert_eq!(report.phases.len(), 2);
    assert_eq!((report.train_images, report.val_images), (36, 12));
    assert!(
        report.truncated > 0,
        "rotten-tomatoes snippets exceed 32 tokens"
    );
    let head = &report.phases[0];
    let (first, last) = head.loss_drop(3);
    assert!(last < first, "head loss {first} -> {last}");
    assert!(head.best_val_accuracy().unwrap() >= 0.5, "{head:?}");
    assert_eq!(report.phases[1].losses.len(), 5); // 36 rows, batch 8, 1 epoch
    assert!(
        events
            .iter()
            .any(|e| matches!(e, train::Progress::Features { .. }))
    );
    // {"last": 1}: the first layer is frozen.
    let after = tuned.net.bert.encoder.layer[0]
        .attention
        .self_attn
        .query
        .weight
        .val();
    assert_eq!(
        before.into_data().try_to_vec::<f32>().unwrap(),
        after.into_data().try_to_vec::<f32>().unwrap()
    );

    // Export as Hugging Face names, reload, same probabilities.
    let dir = std::env::temp_dir().join(format!("tabtune-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = tuned.to_safetensors(&[("format", "pt".into())]).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();
    let config = tuned.hf_config(&report.classes);
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
    assert_eq!(config["id2label"]["1"], "rotten");
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), &tuned.tokenizer.json).unwrap();
    let keys = inspect(&WeightSource::Path(dir.join("model.safetensors"))).unwrap();
    let original = inspect(&WeightSource::Path(minilm().join("model.safetensors"))).unwrap();
    for (key, shape) in &original {
        if key.ends_with("position_ids") {
            continue;
        }
        assert_eq!(keys.get(&format!("bert.{key}")), Some(shape), "{key}");
    }
    assert_eq!(keys["classifier.weight"], [2, 384]);
    assert_eq!(keys["classifier.bias"], [2]);
    assert_eq!(
        keys.len(),
        original.len() + 2 - usize::from(original.keys().any(|k| k.ends_with("position_ids")))
    );
    let back = TextModel::open(&dir, None, &device).unwrap();
    assert_eq!(back.options, recipe.text);
    assert_eq!(back.labels.as_deref(), Some(&report.classes[..]));
    let err = rel_err(&probabilities(&tuned), &probabilities(&back));
    assert!(err < 1e-5, "reloaded model differs: {err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // The report's misclassified rows are the validation rows the metrics count as wrong.
    let metrics = report.metrics.as_ref().unwrap();
    let wrong = metrics.count
        - metrics
            .confusion
            .iter()
            .enumerate()
            .map(|(i, r)| r[i])
            .sum::<usize>();
    assert_eq!(report.misclassified.len(), wrong);
    for miss in &report.misclassified {
        assert_ne!(miss.truth, miss.predicted);
        let row = set.origins.iter().position(|o| *o == miss.name).unwrap();
        assert_eq!(miss.text.as_deref(), Some(set.texts[row].as_str()));
        assert_eq!(miss.truth, set.classes[set.labels[row] as usize]);
    }

    // A checkpoint goes on with phase 2 alone (`head.epochs: 0` keeps its head): what the
    // browser does after a reload.
    let resumed = Recipe {
        head: train::recipe::HeadPhase {
            epochs: 0,
            ..recipe.head.clone()
        },
        ..recipe.clone()
    };
    let phase_two = |model: TextModel| {
        futures_lite::future::block_on(train::finetune_text(
            model,
            &set,
            None,
            &resumed,
            Default::default(),
            16,
            &device,
            &mut |_| Control::Continue,
        ))
    };
    let (_, again) = phase_two(back).unwrap();
    let phases: Vec<&str> = again.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["finetune"]);
    assert_eq!(again.features, None);
    // A model without a head of its own cannot skip the head phase.
    let err = phase_two(crate::model(Some(&recipe.text)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("head.epochs") && err.contains("has none"),
        "{err}"
    );
}

#[test]
fn mismatched_model_files_are_named() {
    let device = Device::flex();
    let config = std::fs::read_to_string(minilm().join("config.json")).unwrap();
    let tokenizer = std::fs::read(minilm().join("tokenizer.json")).unwrap();
    let weights = WeightSource::Path(minilm().join("model.safetensors"));
    let load = |config: &str, tokenizer: &[u8]| {
        TextModel::load(
            config,
            "other/config.json",
            tokenizer,
            "other/tokenizer.json",
            &weights,
            None,
            &device,
        )
        .unwrap_err()
        .to_string()
    };
    // A config.json of another model (BERT-base sizes).
    let base = config.replace("\"hidden_size\": 384", "\"hidden_size\": 768");
    let err = load(&base, &tokenizer);
    assert!(
        err.contains("other/config.json") && err.contains("hidden_size"),
        "{err}"
    );
    // An image model's config.json.
    let err = load(
        r#"{"architecture": "mobilenet_v2", "num_labels": 2}"#,
        &tokenizer,
    );
    assert!(err.contains("other/config.json"), "{err}");
    // A tokenizer with another vocabulary size.
    let mut t: serde_json::Value = serde_json::from_slice(&tokenizer).unwrap();
    t["model"]["vocab"]
        .as_object_mut()
        .unwrap()
        .insert("[EXTRA]".into(), serde_json::json!(30522));
    let err = load(&config, t.to_string().as_bytes());
    assert!(
        err.contains("other/tokenizer.json") && err.contains("30523") && err.contains("30522"),
        "{err}"
    );
    let err = load(&config, b"{\"not\": \"a tokenizer\"}");
    assert!(err.contains("other/tokenizer.json"), "{err}");
    // A max length beyond the position table.
    let err = TextModel::open(
        &minilm(),
        Some(&TextOptions {
            max_length: 4096,
            ..Default::default()
        }),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("text.max_length") && err.contains("512"),
        "{err}"
    );
}

#[test]
fn an_mlp_head_trains_exports_and_reloads() {
    let set = demo_subset(16);
    let recipe = Recipe::from_json_for(
        r#"{"head": {"epochs": 30, "batch_size": 8, "lr": 0.01, "hidden": 16, "dropout": 0.2},
            "finetune": null, "val_fraction": 0.25, "text": {"max_length": 24}}"#,
        Modality::Text,
    )
    .unwrap();
    let device = Device::flex();
    let (tuned, report) = futures_lite::future::block_on(train::finetune_text(
        model(Some(&recipe.text)),
        &set,
        None,
        &recipe,
        Default::default(),
        16,
        &device,
        &mut |_| Control::Continue,
    ))
    .unwrap();
    let (first, last) = report.phases[0].loss_drop(3);
    assert!(last < first, "MLP head loss {first} -> {last}");
    assert_eq!(
        tuned.net.classifier.hidden.as_ref().unwrap().weight.dims(),
        [384, 16]
    );
    let dir = std::env::temp_dir().join(format!("tabtune-mlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = tuned.to_safetensors(&[]).unwrap();
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
    std::fs::write(
        dir.join("config.json"),
        tuned.hf_config(&report.classes).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer.json"), &tuned.tokenizer.json).unwrap();
    let keys = inspect(&WeightSource::Path(dir.join("model.safetensors"))).unwrap();
    assert_eq!(keys["classifier.dense.weight"], [16, 384]);
    assert_eq!(keys["classifier.out_proj.weight"], [2, 16]);
    assert!(!keys.contains_key("classifier.weight"));
    let back = TextModel::open(&dir, None, &device).unwrap();
    assert!(rel_err(&probabilities(&tuned), &probabilities(&back)) < 1e-5);
    std::fs::remove_dir_all(&dir).unwrap();
    // Image models keep a one-layer classifier.
    let err = Recipe::from_json(r#"{"head": {"hidden": 0}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("head.hidden"), "{err}");
}
