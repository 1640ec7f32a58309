//! BERT (Devlin et al. 2019) encoder as Hugging Face's `modeling_bert.py` defines it from a
//! `config.json`, loading HF checkpoints (`BertModel`, or `BertForSequenceClassification`
//! whose keys start with `bert.`) by their own key names (see [`weight_map`]).
//!
//! Fields are named after the checkpoint's keys; only `LayerNorm` (not snake case) and `self`
//! (a keyword) are renamed, to `layer_norm` and `self_attn`.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, relu, softmax};
use serde::{Deserialize, Serialize};

use super::lora::{Adaptable, Linear, LoraSite};
use crate::weights::{LoadReport, WeightSource, inspect, load_into};
use crate::{Error, Result};

/// The fields of a Hugging Face BERT `config.json` the encoder needs; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Rows of the word embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (divides `hidden_size`).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation: "gelu" (exact, erf), "gelu_new" (tanh approximation), "relu".
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Longest input the position table covers.
    pub max_position_embeddings: usize,
    /// Rows of the token type (segment) table.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Dropout after embeddings, attention output and feed-forward output.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: usize,
    /// "bert".
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Only "absolute" (learned position embeddings) is supported.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
    /// The file this came from, for messages.
    #[serde(skip)]
    pub file: String,
}

// Hugging Face's own defaults for keys a config.json may leave out.
fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_model_type() -> String {
    "bert".into()
}
fn default_position_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Parse and check a `config.json`; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let fail = |message: String| Error::Weights {
            file: file.into(),
            message,
        };
        let mut config: Self =
            serde_json::from_str(text).map_err(|err| fail(format!("not a BERT config: {err}")))?;
        config.file = file.into();
        if config.model_type != "bert" {
            return Err(fail(format!(
                "model_type \"{}\" is not supported (only \"bert\")",
                config.model_type
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(fail(format!(
                "position_embedding_type \"{}\" is not supported (only \"absolute\")",
                config.position_embedding_type
            )));
        }
        config.activation()?;
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(fail(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
        for (field, p) in [
            ("hidden_dropout_prob", config.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                config.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(fail(format!("{field} {p} is not in [0, 1)")));
            }
        }
        Ok(config)
    }

    fn activation(&self) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::Weights {
                file: self.file.clone(),
                message: format!(
                    "hidden_act \"{other}\" is not supported (gelu, gelu_new, \
                     gelu_pytorch_tanh, relu)"
                ),
            }),
        }
    }
}

/// Checkpoint key prefix `prefix` ("" for `BertModel`, "bert." for the task models) + HF key
/// prefix -> this module's path prefix, for a model of `layers` encoder layers. Everything not
/// listed keeps its name.
pub fn weight_map(prefix: &str, layers: usize) -> Vec<(String, String)> {
    let mut map = vec![
        (
            format!("{prefix}embeddings.LayerNorm."),
            "embeddings.layer_norm.".into(),
        ),
        (format!("{prefix}embeddings."), "embeddings.".into()),
        (format!("{prefix}pooler."), "pooler.".into()),
    ];
    for n in 0..layers {
        let (from, to) = (
            format!("{prefix}encoder.layer.{n}"),
            format!("encoder.layer.{n}"),
        );
        for (f, t) in [
            (".attention.self.", ".attention.self_attn."),
            (
                ".attention.output.LayerNorm.",
                ".attention.output.layer_norm.",
            ),
            (".attention.output.dense.", ".attention.output.dense."),
            (".intermediate.", ".intermediate."),
            (".output.LayerNorm.", ".output.layer_norm."),
            (".output.dense.", ".output.dense."),
        ] {
            map.push((format!("{from}{f}"), format!("{to}{t}")));
        }
    }
    map
}

/// The prefix the checkpoint's BERT keys carry: "" (`BertModel`) or "bert." (task models).
pub fn key_prefix(keys: &BTreeMap<String, Vec<usize>>) -> &'static str {
    if keys.contains_key("bert.embeddings.word_embeddings.weight") {
        "bert."
    } else {
        ""
    }
}

/// Check that `config` describes the tensors `keys` (names -> shapes, from
/// [`inspect`]): the error names the config field and the tensor that disagree.
pub fn check_config(config: &BertConfig, keys: &BTreeMap<String, Vec<usize>>) -> Result<()> {
    let p = key_prefix(keys);
    let fail = |message: String| Error::Weights {
        file: config.file.clone(),
        message,
    };
    let (h, i) = (config.hidden_size, config.intermediate_size);
    // (config field, its value, tensor, expected shape); the field is the one the first
    // differing dimension comes from.
    let checks: [(&[&str], &str, Vec<usize>); 5] = [
        (
            &["vocab_size", "hidden_size"],
            "embeddings.word_embeddings.weight",
            vec![config.vocab_size, h],
        ),
        (
            &["max_position_embeddings", "hidden_size"],
            "embeddings.position_embeddings.weight",
            vec![config.max_position_embeddings, h],
        ),
        (
            &["type_vocab_size", "hidden_size"],
            "embeddings.token_type_embeddings.weight",
            vec![config.type_vocab_size, h],
        ),
        (
            &["hidden_size", "hidden_size"],
            "encoder.layer.0.attention.self.query.weight",
            vec![h, h],
        ),
        (
            &["intermediate_size", "hidden_size"],
            "encoder.layer.0.intermediate.dense.weight",
            vec![i, h],
        ),
    ];
    for (fields, key, want) in checks {
        let key = format!("{p}{key}");
        let Some(got) = keys.get(&key) else {
            return Err(fail(format!(
                "the weights have no tensor `{key}`: not a BERT checkpoint?"
            )));
        };
        if *got != want {
            let d = (0..want.len())
                .find(|&d| got.get(d) != Some(&want[d]))
                .unwrap_or(0);
            return Err(fail(format!(
                "{} {} does not match tensor `{key}` {got:?} of the weights (expected {want:?})",
                fields[d.min(fields.len() - 1)],
                want[d]
            )));
        }
    }
    let layer_prefix = format!("{p}encoder.layer.");
    let layers = keys
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&layer_prefix)?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .map(|n: usize| n + 1)
        .max()
        .unwrap_or(0);
    if layers != config.num_hidden_layers {
        return Err(fail(format!(
            "num_hidden_layers {} does not match the weights, which have {layers} layers \
             (`{layer_prefix}0` ... `{layer_prefix}{}`)",
            config.num_hidden_layers,
            layers.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// Exact GELU, x·Φ(x), written with `erf` rather than burn's `gelu` op: on the cubecl
    /// (WebGPU) backends that op's backward is the tanh approximation's derivative, while
    /// autodiff differentiates `erf` exactly.
    Gelu,
    /// The tanh approximation ("gelu_new").
    GeluTanh,
    Relu,
}

impl Activation {
    fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => x.clone() * (x / core::f64::consts::SQRT_2).erf().add_scalar(1.0) * 0.5,
            Self::GeluTanh => gelu_approximate(x),
            Self::Relu => relu(x),
        }
    }
}

/// `embeddings.*`: word + position + token type, LayerNorm, dropout.
#[derive(Module, Debug)]
pub struct Embeddings {
    /// `embeddings.word_embeddings`.
    pub word_embeddings: Embedding,
    /// `embeddings.position_embeddings`.
    pub position_embeddings: Embedding,
    /// `embeddings.token_type_embeddings`.
    pub token_type_embeddings: Embedding,
    /// `embeddings.LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl Embeddings {
    fn forward(&self, input_ids: Tensor<2, Int>, token_type_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = input_ids.dims();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &input_ids.device())
            .reshape([1, len])
            .expand([batch, len]);
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(token_type_ids);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// `attention.self`: multi-head scaled dot-product self-attention.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// `query`.
    pub query: Linear,
    /// `key`.
    pub key: Linear,
    /// `value`.
    pub value: Linear,
    dropout: Dropout,
    heads: usize,
}

impl SelfAttention {
    /// `x` `[batch, len, hidden]`, `mask` additive `[batch, 1, 1, len]`.
    fn forward(&self, x: Tensor<3>, mask: Tensor<4>) -> Tensor<3> {
        let [batch, len, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let split = |t: Tensor<3>| -> Tensor<4> {
            t.reshape([batch, len, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt() + mask;
        let probs = self.dropout.forward(softmax(scores, 3));
        probs
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, len, hidden])
    }
}

/// `attention.output` and `output`: dense, dropout, residual, LayerNorm.
#[derive(Module, Debug)]
pub struct DenseNorm {
    /// `dense`.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl DenseNorm {
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.layer_norm
            .forward(self.dropout.forward(self.dense.forward(x)) + residual)
    }
}

/// `attention`.
#[derive(Module, Debug)]
pub struct Attention {
    /// `attention.self`.
    pub self_attn: SelfAttention,
    /// `attention.output`.
    pub output: DenseNorm,
}

/// `intermediate`: dense + activation.
#[derive(Module, Debug)]
pub struct Intermediate {
    /// `intermediate.dense`.
    pub dense: Linear,
    #[module(skip)]
    act: Activation,
}

/// `encoder.layer.N`.
#[derive(Module, Debug)]
pub struct Layer {
    /// `attention`.
    pub attention: Attention,
    /// `intermediate`.
    pub intermediate: Intermediate,
    /// `output`.
    pub output: DenseNorm,
}

impl Layer {
    fn forward(&self, x: Tensor<3>, mask: Tensor<4>) -> Tensor<3> {
        let a = self.attention.self_attn.forward(x.clone(), mask);
        let a = self.attention.output.forward(a, x);
        let i = self
            .intermediate
            .act
            .forward(self.intermediate.dense.forward(a.clone()));
        self.output.forward(i, a)
    }
}

/// `encoder`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// `encoder.layer`.
    pub layer: Vec<Layer>,
}

/// `pooler`: tanh(dense(hidden state of the first token)).
#[derive(Module, Debug)]
pub struct Pooler {
    /// `pooler.dense`.
    pub dense: Linear,
}

/// The BERT encoder (HF `BertModel`).
#[derive(Module, Debug)]
pub struct Bert {
    /// `embeddings`.
    pub embeddings: Embeddings,
    /// `encoder`.
    pub encoder: Encoder,
    /// `pooler` (absent from checkpoints saved with `add_pooling_layer=False`).
    pub pooler: Option<Pooler>,
}

/// Key suffixes a checkpoint may hold that are not weights: the `position_ids` /
/// `token_type_ids` buffers older transformers saved.
pub(crate) const IGNORED: &[&str] = &["embeddings.position_ids", "embeddings.token_type_ids"];
/// A `BertForSequenceClassification`'s own head: tabtune trains a new one.
const TASK_HEAD: &[&str] = &["classifier.weight", "classifier.bias"];

impl Adaptable for Bert {
    /// PEFT's defaults for BERT: the attention's query and value projections.
    fn default_targets(&self) -> Option<&'static [&'static str]> {
        Some(&["query", "value"])
    }

    /// Every Linear of the encoder (and the pooler), under `BertModel`'s module names.
    fn sites(&mut self) -> Vec<(String, &mut dyn LoraSite)> {
        let mut sites: Vec<(String, &mut dyn LoraSite)> = Vec::new();
        for (n, layer) in self.encoder.layer.iter_mut().enumerate() {
            let p = format!("encoder.layer.{n}");
            let a = &mut layer.attention;
            sites.push((format!("{p}.attention.self.query"), &mut a.self_attn.query));
            sites.push((format!("{p}.attention.self.key"), &mut a.self_attn.key));
            sites.push((format!("{p}.attention.self.value"), &mut a.self_attn.value));
            sites.push((format!("{p}.attention.output.dense"), &mut a.output.dense));
            sites.push((
                format!("{p}.intermediate.dense"),
                &mut layer.intermediate.dense,
            ));
            sites.push((format!("{p}.output.dense"), &mut layer.output.dense));
        }
        if let Some(pooler) = self.pooler.as_mut() {
            sites.push(("pooler.dense".into(), &mut pooler.dense));
        }
        sites
    }
}

impl Bert {
    /// A randomly initialised encoder of `config`'s shape, with or without the pooler.
    pub fn new(config: &BertConfig, pooler: bool, device: &Device) -> Result<Self> {
        let act = config.activation()?;
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let norm = || LayerNormConfig::new(h).with_epsilon(eps).init(device);
        let hidden_dropout = || DropoutConfig::new(config.hidden_dropout_prob).init();
        let layer = (0..config.num_hidden_layers)
            .map(|_| Layer {
                attention: Attention {
                    self_attn: SelfAttention {
                        query: Linear::new(h, h, device),
                        key: Linear::new(h, h, device),
                        value: Linear::new(h, h, device),
                        dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
                        heads: config.num_attention_heads,
                    },
                    output: DenseNorm {
                        dense: Linear::new(h, h, device),
                        layer_norm: norm(),
                        dropout: hidden_dropout(),
                    },
                },
                intermediate: Intermediate {
                    dense: Linear::new(h, config.intermediate_size, device),
                    act,
                },
                output: DenseNorm {
                    dense: Linear::new(config.intermediate_size, h, device),
                    layer_norm: norm(),
                    dropout: hidden_dropout(),
                },
            })
            .collect();
        Ok(Self {
            embeddings: Embeddings {
                word_embeddings: EmbeddingConfig::new(config.vocab_size, h).init(device),
                position_embeddings: EmbeddingConfig::new(config.max_position_embeddings, h)
                    .init(device),
                token_type_embeddings: EmbeddingConfig::new(config.type_vocab_size, h).init(device),
                layer_norm: norm(),
                dropout: hidden_dropout(),
            },
            encoder: Encoder { layer },
            pooler: pooler.then(|| Pooler {
                dense: Linear::new(h, h, device),
            }),
        })
    }

    /// Load a HF checkpoint described by `config`: the config is checked against the tensors
    /// first (a mismatch names the field and the tensor), the pooler is loaded when the file
    /// has one, and a `BertForSequenceClassification`'s `classifier.*` is left out.
    pub fn load(
        config: &BertConfig,
        source: &WeightSource,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let keys = inspect(source)?;
        check_config(config, &keys)?;
        let prefix = key_prefix(&keys);
        let pooler = keys.contains_key(&format!("{prefix}pooler.dense.weight"));
        let mut model = Self::new(config, pooler, device)?;
        let map = weight_map(prefix, config.num_hidden_layers);
        let ignore: Vec<&str> = match prefix {
            "" => IGNORED.to_vec(),
            _ => IGNORED.iter().chain(TASK_HEAD).copied().collect(),
        };
        let report = load_into(&mut model, source, &map, &ignore)?;
        Ok((model, report))
    }

    /// `last_hidden_state` `[batch, len, hidden]` of token ids `[batch, len]`;
    /// `attention_mask` is 1 for tokens and 0 for padding.
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Tensor<2, Int>,
        token_type_ids: Tensor<2, Int>,
    ) -> Tensor<3> {
        let [batch, len] = attention_mask.dims();
        // HF's extended mask: 0 where attended, the dtype's lowest value at padding, so padded
        // keys get exactly zero weight after the softmax.
        let mask = (attention_mask.float().neg() + 1.0).reshape([batch, 1, 1, len]) * f32::MIN;
        let mut x = self.embeddings.forward(input_ids, token_type_ids);
        for layer in &self.encoder.layer {
            x = layer.forward(x, mask.clone());
        }
        x
    }

    /// HF's `pooler_output` `[batch, hidden]`, if the model has a pooler.
    pub fn pool(&self, hidden: Tensor<3>) -> Option<Tensor<2>> {
        let pooler = self.pooler.as_ref()?;
        Some(pooler.dense.forward(cls_pool(hidden)).tanh())
    }

    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.dims()[1]
    }
}

/// Mean of `hidden` `[batch, len, hidden]` over the tokens where `mask` `[batch, len]` is 1
/// (sentence-transformers' mean pooling).
pub fn mean_pool(hidden: Tensor<3>, mask: Tensor<2, Int>) -> Tensor<2> {
    let mask = mask.float().unsqueeze_dim::<3>(2);
    let sum = (hidden * mask.clone()).sum_dim(1);
    let count = mask.sum_dim(1).clamp_min(1e-9);
    (sum / count).squeeze_dim(1)
}

/// The first (`[CLS]`) token's hidden state `[batch, hidden]`.
pub fn cls_pool(hidden: Tensor<3>) -> Tensor<2> {
    hidden.narrow(1, 0, 1).squeeze_dim(1)
}

/// Rows scaled to unit L2 norm (PyTorch's `F.normalize`, eps 1e-12).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}
