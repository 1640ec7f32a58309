//! BERT against PyTorch: all-MiniLM-L6-v2 (fetched by `make assets`) on the three reference
//! sentences of ../shared/reference (scripts/make_text_refs.py), copied into tests/fixtures.
//! The token ids come from the reference (tokenisation is tested on its own).
#![cfg(not(target_arch = "wasm32"))] // reads the checkpoint from assets/

use std::path::PathBuf;

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::TensorData;
use tabtune::models::bert::{Bert, BertConfig, check_config, l2_normalize, mean_pool};
use tabtune::models::head::Head;
use tabtune::weights::{WeightSource, inspect};

mod common;
use common::{npy_f32, rel_err};

fn asset(name: &str) -> PathBuf {
    common::asset(&format!("models/all-MiniLM-L6-v2/{name}"))
}

const REFERENCE: &str = include_str!("fixtures/all-minilm-l6-v2/reference.json");
const HIDDEN: &[u8] = include_bytes!("fixtures/all-minilm-l6-v2/ref_last_hidden_state.npy");
const EMBEDDINGS: &[u8] = include_bytes!("fixtures/all-minilm-l6-v2/ref_sentence_embeddings.npy");
const POOLER: &[u8] = include_bytes!("fixtures/all-minilm-l6-v2/ref_pooler_output.npy");

fn config() -> BertConfig {
    let text = std::fs::read_to_string(asset("config.json")).unwrap();
    BertConfig::from_json(&text, "config.json").unwrap()
}

fn reference() -> serde_json::Value {
    serde_json::from_str(REFERENCE).unwrap()
}

/// `reference[key]`, a [3, 15] list of lists of integers.
fn ids(reference: &serde_json::Value, key: &str, device: &Device) -> Tensor<2, Int> {
    let rows = reference[key].as_array().unwrap();
    let values: Vec<i64> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
        .collect();
    let shape = [rows.len(), values.len() / rows.len()];
    Tensor::from_data(TensorData::new(values, shape), device)
}

struct Inputs {
    ids: Tensor<2, Int>,
    mask: Tensor<2, Int>,
    types: Tensor<2, Int>,
}

fn inputs(device: &Device) -> Inputs {
    let r = reference();
    Inputs {
        ids: ids(&r, "input_ids", device),
        mask: ids(&r, "attention_mask", device),
        types: ids(&r, "token_type_ids", device),
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn load(config: &BertConfig, source: WeightSource, device: &Device) -> Bert {
    let (model, report) = Bert::load(config, &source, device).unwrap();
    // 3 embedding tables + LayerNorm 2, 6 layers x 16, pooler 2.
    assert_eq!(report.applied, 3 + 2 + 6 * 16 + 2);
    model
}

#[test]
fn hidden_states_and_sentence_embeddings_match_pytorch() {
    let device = Device::flex();
    let model = load(
        &config(),
        WeightSource::Path(asset("model.safetensors")),
        &device,
    );
    assert!(model.pooler.is_some());
    let x = inputs(&device);
    let hidden = model.forward(x.ids, x.mask.clone(), x.types);
    assert_eq!(hidden.dims(), [3, 15, 384]);
    let embeddings = l2_normalize(mean_pool(hidden.clone(), x.mask));
    let pooled = model.pool(hidden.clone()).unwrap();
    let eh = rel_err(&values(hidden), &npy_f32(HIDDEN));
    let ee = rel_err(&values(embeddings), &npy_f32(EMBEDDINGS));
    let ep = rel_err(&values(pooled), &npy_f32(POOLER));
    println!(
        "all-MiniLM-L6-v2 relative error: last_hidden_state {eh:.2e}, embeddings {ee:.2e}, \
         pooler_output {ep:.2e}"
    );
    assert!(ep <= 1e-4, "pooler_output relative error {ep}");
    assert!(eh <= 1e-4, "last_hidden_state relative error {eh}");
    assert!(ee <= 1e-4, "sentence embeddings relative error {ee}");
}

/// The same weights under `BertForSequenceClassification`'s names (`bert.` prefix, a
/// `classifier` head, the `position_ids` buffer) give the same model to the bit.
#[test]
fn task_checkpoints_with_the_bert_prefix_load_the_same_encoder() {
    let bytes = std::fs::read(asset("model.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let mut data = bytes[8 + len..].to_vec();
    let mut renamed: serde_json::Map<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "__metadata__" => (k, v),
            _ => (format!("bert.{k}"), v),
        })
        .collect();
    for (name, shape, n) in [
        ("classifier.weight", vec![2, 384], 768),
        ("classifier.bias", vec![2], 2),
    ] {
        let start = data.len();
        data.extend(std::iter::repeat_n(0u8, 4 * n));
        renamed.insert(
            name.into(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut json = serde_json::to_vec(&renamed).unwrap();
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(b' ');
    }
    let mut file = (json.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&json);
    file.extend_from_slice(&data);

    let device = Device::flex();
    let source = WeightSource::Bytes {
        name: "task.safetensors".into(),
        bytes: file,
    };
    assert!(
        inspect(&source)
            .unwrap()
            .contains_key("bert.pooler.dense.weight")
    );
    let task = load(&config(), source, &device);
    let plain = load(
        &config(),
        WeightSource::Path(asset("model.safetensors")),
        &device,
    );
    let x = inputs(&device);
    let a = values(task.forward(x.ids.clone(), x.mask.clone(), x.types.clone()));
    let b = values(plain.forward(x.ids, x.mask, x.types));
    assert_eq!(a, b);
}

/// Dropout (p = 0.1 from config.json) acts on an autodiff device only: inference on the plain
/// device is deterministic, a training forward is not.
#[test]
fn dropout_acts_only_when_training() {
    for (device, training) in [(Device::flex(), false), (Device::flex().autodiff(), true)] {
        let model = load(
            &config(),
            WeightSource::Path(asset("model.safetensors")),
            &device,
        );
        let x = inputs(&device);
        let run = || values(model.forward(x.ids.clone(), x.mask.clone(), x.types.clone()));
        assert_eq!(run() != run(), training, "training {training}");
    }
}

/// make_text_refs.py's step: dropout off, train mode, a Linear(384, 2) head on the
/// L2-normalised mean-pooled embeddings, targets [1, 0, 1], mean cross-entropy.
#[test]
fn one_training_step_matches_pytorch() {
    let r = reference();
    let step = &r["train_step"];
    let device = Device::flex().autodiff();
    let mut config = config();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let model = load(
        &config,
        WeightSource::Path(asset("model.safetensors")),
        &device,
    );
    // weight[i, j] = ((i * 384 + j) % 13 - 6) * 0.05, bias 0; burn's Linear is [in, out].
    let mut w = vec![0.0f32; 384 * 2];
    for i in 0..2 {
        for j in 0..384 {
            w[j * 2 + i] = (((i * 384 + j) % 13) as f32 - 6.0) * 0.05;
        }
    }
    let head = Head::from_linear(Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [384, 2]), &device)),
        bias: Some(Param::from_tensor(Tensor::zeros([2], &device))),
    });

    let x = inputs(&device);
    let hidden = model.forward(x.ids, x.mask.clone(), x.types);
    let logits = head.forward(l2_normalize(mean_pool(hidden, x.mask)));
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 1], [3]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), targets);

    let ref_logits: Vec<f32> = step["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    let el = rel_err(&values(logits), &ref_logits);
    let loss_value: f32 = loss.clone().into_scalar();
    let ref_loss = step["loss"].as_f64().unwrap() as f32;
    println!("train step: logits relative error {el:.2e}, loss {loss_value} vs {ref_loss}");
    assert!(el <= 1e-4, "logits relative error {el}");
    assert!(
        (loss_value - ref_loss).abs() <= 1e-5,
        "loss {loss_value} vs {ref_loss}"
    );

    let grads = loss.backward();
    fn norm<const D: usize>(t: Option<Tensor<D>>) -> f64 {
        let v = values(t.expect("no gradient"));
        v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
    }
    let layer0 = &model.encoder.layer[0];
    let layer5 = &model.encoder.layer[5];
    let got = [
        (
            "embeddings.word_embeddings.weight",
            norm(model.embeddings.word_embeddings.weight.grad(&grads)),
        ),
        (
            "encoder.layer.0.attention.self.query.weight",
            norm(layer0.attention.self_attn.query.weight.grad(&grads)),
        ),
        (
            "encoder.layer.5.output.dense.weight",
            norm(layer5.output.dense.weight.grad(&grads)),
        ),
        (
            "encoder.layer.5.output.LayerNorm.weight",
            norm(layer5.output.layer_norm.gamma.grad(&grads)),
        ),
    ];
    let head_grad = norm(head.linear.weight.grad(&grads));
    let want = step["head_weight_grad_l2"].as_f64().unwrap();
    let rel = (head_grad - want).abs() / want;
    println!("grad L2 head.weight: {head_grad:.7} vs {want:.7} (rel {rel:.1e})");
    assert!(
        rel <= 1e-5,
        "head weight gradient norm {head_grad} vs {want}"
    );
    for (name, value) in got {
        let want = step["grad_l2"][name].as_f64().unwrap();
        let rel = (value - want).abs() / want;
        println!("grad L2 {name}: {value:.7} vs {want:.7} (rel {rel:.1e})");
        assert!(
            rel <= 1e-4,
            "{name}: gradient norm {value} vs PyTorch {want}"
        );
    }
}

#[test]
fn a_config_that_does_not_match_the_weights_is_refused() {
    let text = std::fs::read_to_string(asset("config.json")).unwrap();
    let keys = inspect(&WeightSource::Path(asset("model.safetensors"))).unwrap();
    check_config(&config(), &keys).unwrap();

    let wrong = text.replace("\"hidden_size\": 384", "\"hidden_size\": 768");
    assert_ne!(wrong, text);
    let config = BertConfig::from_json(&wrong, "config.json").unwrap();
    let err = check_config(&config, &keys).unwrap_err().to_string();
    assert!(
        err.contains("config.json")
            && err.contains("hidden_size 768")
            && err.contains("embeddings.word_embeddings.weight")
            && err.contains("[30522, 384]"),
        "{err}"
    );

    let wrong = text.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 12");
    let config = BertConfig::from_json(&wrong, "config.json").unwrap();
    let err = check_config(&config, &keys).unwrap_err().to_string();
    assert!(
        err.contains("num_hidden_layers 12") && err.contains("6 layers"),
        "{err}"
    );
    // Bert::load checks before it loads.
    let err = Bert::load(
        &config,
        &WeightSource::Path(asset("model.safetensors")),
        &Device::flex(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("num_hidden_layers"), "{err}");

    let wrong = text.replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"");
    let err = BertConfig::from_json(&wrong, "my/config.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("my/config.json") && err.contains("hidden_act \"swish\""),
        "{err}"
    );
    let err = BertConfig::from_json("{\"hidden_size\": 384}", "config.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("vocab_size"),
        "{err}"
    );
}

#[test]
fn a_truncated_checkpoint_is_refused_naming_the_file() {
    let bytes = std::fs::read(asset("model.safetensors")).unwrap();
    let cut = bytes[..bytes.len() / 3].to_vec();
    let dir = std::env::temp_dir().join(format!("tabtune-bert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.safetensors");
    std::fs::write(&path, &cut).unwrap();
    for source in [
        WeightSource::Path(path),
        WeightSource::Bytes {
            name: "cut.safetensors".into(),
            bytes: cut,
        },
    ] {
        let err = Bert::load(&config(), &source, &Device::flex())
            .unwrap_err()
            .to_string();
        println!("{err}");
        assert!(err.contains(&source.name()), "{err}");
    }
    std::fs::remove_dir_all(dir).ok();
}
