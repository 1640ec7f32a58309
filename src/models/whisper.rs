//! Whisper (Radford et al. 2022) as Hugging Face's `WhisperForConditionalGeneration` defines
//! it from a `config.json`, loading its checkpoints by their own key names (`model.encoder.*`,
//! `model.decoder.*`; the output projection is tied to `model.decoder.embed_tokens`).
//!
//! - Encoder: two GELU convolutions over the log-mel input (`[batch, mels, 3000]`, the second
//!   with stride 2), the stored position table, pre-LayerNorm self-attention layers and a
//!   final LayerNorm: `[batch, 1500, d_model]`.
//! - Decoder: token + position embeddings, pre-LayerNorm layers of causal self-attention,
//!   cross-attention on the encoder states and a feed-forward block, a final LayerNorm, and
//!   logits against the token embedding table (tied).
//! - Generation: greedy, with a key/value cache (each step runs one token through the
//!   decoder; the cross-attention keys and values are computed once per clip), the config's
//!   `suppress_tokens` at every step and `begin_suppress_tokens` at the first.
//!
//! Attention's key projections have no bias (HF's `k_proj`); GELU is the exact (erf) one.

use burn::module::{Module, ParamGroup};
use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, LinearConfig};

use super::lora::{self, Adaptable, Linear, LoraOptions, LoraSite};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use crate::weights::{LoadReport, WeightSource, inspect, load_into};
use crate::{Error, Result};

/// The fields of a Hugging Face Whisper `config.json` the model needs; other keys are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhisperConfig {
    /// "whisper".
    pub model_type: String,
    /// Rows of the token embedding table (51864 for the English-only models).
    pub vocab_size: usize,
    /// Log-mel bands of the input.
    pub num_mel_bins: usize,
    /// Width of every hidden state.
    pub d_model: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Encoder attention heads.
    pub encoder_attention_heads: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Decoder attention heads.
    pub decoder_attention_heads: usize,
    /// Encoder feed-forward width.
    pub encoder_ffn_dim: usize,
    /// Decoder feed-forward width.
    pub decoder_ffn_dim: usize,
    /// Encoder positions (1500: 30 s of 10 ms frames after the stride-2 convolution).
    pub max_source_positions: usize,
    /// Decoder positions: the longest token sequence (448).
    pub max_target_positions: usize,
    /// `<|startoftranscript|>`.
    pub decoder_start_token_id: u32,
    /// `<|endoftext|>`.
    pub eos_token_id: u32,
    /// Padding (the English-only models pad with `<|endoftext|>`).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Tokens never generated.
    #[serde(default)]
    pub suppress_tokens: Vec<u32>,
    /// Tokens not generated first.
    #[serde(default)]
    pub begin_suppress_tokens: Vec<u32>,
    /// Only "gelu".
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Only `false` (the released checkpoints).
    #[serde(default)]
    pub scale_embedding: bool,
    /// The file this came from, for messages.
    #[serde(skip)]
    pub file: String,
}

fn default_activation() -> String {
    "gelu".into()
}

/// `<|notimestamps|>` of the English-only vocabulary: the prompt's second token.
pub const NO_TIMESTAMPS_EN: u32 = 50362;
/// The same token in the multilingual vocabulary (51865 tokens, ids shifted by one).
pub const NO_TIMESTAMPS_MULTI: u32 = 50363;
/// Seconds of audio the encoder always sees.
pub const CHUNK_SECONDS: f64 = 30.0;

impl WhisperConfig {
    /// Parse and check a `config.json`; `file` names it in errors.
    pub fn from_json(text: &str, file: &str) -> Result<Self> {
        let fail = |message: String| Error::Weights {
            file: file.into(),
            message,
        };
        let mut c: Self = serde_json::from_str(text)
            .map_err(|err| fail(format!("not a Whisper config: {err}")))?;
        c.file = file.into();
        if c.model_type != "whisper" {
            return Err(fail(format!(
                "model_type \"{}\" is not Whisper",
                c.model_type
            )));
        }
        if c.activation_function != "gelu" {
            return Err(fail(format!(
                "activation_function \"{}\" is not supported (only \"gelu\")",
                c.activation_function
            )));
        }
        if c.scale_embedding {
            return Err(fail("scale_embedding true is not supported".into()));
        }
        for (field, heads) in [
            ("encoder_attention_heads", c.encoder_attention_heads),
            ("decoder_attention_heads", c.decoder_attention_heads),
        ] {
            if heads == 0 || !c.d_model.is_multiple_of(heads) {
                return Err(fail(format!(
                    "d_model {} is not a multiple of {field} {heads}",
                    c.d_model
                )));
            }
        }
        Ok(c)
    }

    /// The decoder's prompt: `<|startoftranscript|>` and `<|notimestamps|>` (English-only
    /// models take no language or task token).
    pub fn prompt(&self) -> Vec<u32> {
        let no_timestamps = if self.vocab_size >= 51865 {
            NO_TIMESTAMPS_MULTI
        } else {
            NO_TIMESTAMPS_EN
        };
        vec![self.decoder_start_token_id, no_timestamps]
    }

    /// Log-mel frames of the input (twice the encoder's positions).
    pub fn frames(&self) -> usize {
        self.max_source_positions * 2
    }

    /// Check the tensors `keys` (names -> shapes) against this config: the error names the
    /// field and the tensor that disagree.
    pub fn check(&self, keys: &std::collections::BTreeMap<String, Vec<usize>>) -> Result<()> {
        let fail = |message: String| Error::Weights {
            file: self.file.clone(),
            message,
        };
        let d = self.d_model;
        let checks: [(&str, &str, Vec<usize>); 6] = [
            (
                "vocab_size",
                "model.decoder.embed_tokens.weight",
                vec![self.vocab_size, d],
            ),
            (
                "num_mel_bins",
                "model.encoder.conv1.weight",
                vec![d, self.num_mel_bins, 3],
            ),
            (
                "max_source_positions",
                "model.encoder.embed_positions.weight",
                vec![self.max_source_positions, d],
            ),
            (
                "max_target_positions",
                "model.decoder.embed_positions.weight",
                vec![self.max_target_positions, d],
            ),
            (
                "encoder_ffn_dim",
                "model.encoder.layers.0.fc1.weight",
                vec![self.encoder_ffn_dim, d],
            ),
            (
                "decoder_ffn_dim",
                "model.decoder.layers.0.fc1.weight",
                vec![self.decoder_ffn_dim, d],
            ),
        ];
        for (field, key, want) in checks {
            match keys.get(key) {
                None => {
                    return Err(fail(format!(
                        "the weights have no tensor `{key}`: not a Whisper checkpoint?"
                    )));
                }
                Some(got) if *got != want => {
                    return Err(fail(format!(
                        "{field} does not match tensor `{key}` {got:?} (expected {want:?})"
                    )));
                }
                _ => {}
            }
        }
        for (field, part, want) in [
            ("encoder_layers", "encoder", self.encoder_layers),
            ("decoder_layers", "decoder", self.decoder_layers),
        ] {
            let prefix = format!("model.{part}.layers.");
            let layers = keys
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix)?.split('.').next()?.parse().ok())
                .map(|n: usize| n + 1)
                .max()
                .unwrap_or(0);
            if layers != want {
                return Err(fail(format!(
                    "{field} {want} does not match the weights, which have {layers} {part} layers"
                )));
            }
        }
        Ok(())
    }
}

/// Exact GELU, x·Φ(x), written with `erf`: burn's `gelu` op differentiates as the tanh
/// approximation on the cubecl (WebGPU) backends, autodiff differentiates `erf` exactly.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * (x / core::f64::consts::SQRT_2).erf().add_scalar(1.0) * 0.5
}

/// Multi-head attention with HF's projection names (`k_proj` has no bias).
#[derive(Module, Debug)]
pub struct Attention {
    /// `q_proj`.
    pub q_proj: Linear,
    /// `k_proj` (no bias).
    pub k_proj: Linear,
    /// `v_proj`.
    pub v_proj: Linear,
    /// `out_proj`.
    pub out_proj: Linear,
    heads: usize,
}

/// Keys and values of one attention `[batch, heads, len, head_dim]`.
#[derive(Debug, Clone)]
pub struct KeyValues {
    /// Keys.
    pub k: Tensor<4>,
    /// Values.
    pub v: Tensor<4>,
}

impl Attention {
    fn new(d: usize, heads: usize, device: &Device) -> Self {
        Self {
            q_proj: Linear::new(d, d, device),
            k_proj: LinearConfig::new(d, d).with_bias(false).init(device).into(),
            v_proj: Linear::new(d, d, device),
            out_proj: Linear::new(d, d, device),
            heads,
        }
    }

    fn split(&self, t: Tensor<3>) -> Tensor<4> {
        let [batch, len, d] = t.dims();
        t.reshape([batch, len, self.heads, d / self.heads])
            .swap_dims(1, 2)
    }

    /// Keys and values of `x` `[batch, len, d]`.
    pub fn key_values(&self, x: Tensor<3>) -> KeyValues {
        KeyValues {
            k: self.split(self.k_proj.forward(x.clone())),
            v: self.split(self.v_proj.forward(x)),
        }
    }

    /// Attend from `x` `[batch, len, d]` to `kv`; `mask` is added to the scores
    /// (`[len, kv_len]`, broadcast).
    pub fn attend(&self, x: Tensor<3>, kv: &KeyValues, mask: Option<Tensor<2>>) -> Tensor<3> {
        let [batch, len, d] = x.dims();
        let head_dim = d / self.heads;
        let q = self.split(self.q_proj.forward(x)) / (head_dim as f64).sqrt();
        let mut scores = q.matmul(kv.k.clone().swap_dims(2, 3));
        if let Some(mask) = mask {
            scores = scores + mask.unsqueeze::<4>();
        }
        let out = softmax(scores, 3)
            .matmul(kv.v.clone())
            .swap_dims(1, 2)
            .reshape([batch, len, d]);
        self.out_proj.forward(out)
    }
}

/// `fc1`, GELU, `fc2`.
fn feed_forward(fc1: &Linear, fc2: &Linear, x: Tensor<3>) -> Tensor<3> {
    fc2.forward(gelu(fc1.forward(x)))
}

/// `model.encoder.layers.N`.
#[derive(Module, Debug)]
pub struct EncoderLayer {
    /// `self_attn`.
    pub self_attn: Attention,
    /// `self_attn_layer_norm`.
    pub self_attn_layer_norm: LayerNorm,
    /// `fc1`.
    pub fc1: Linear,
    /// `fc2`.
    pub fc2: Linear,
    /// `final_layer_norm`.
    pub final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let kv = self.self_attn.key_values(h.clone());
        let x = x + self.self_attn.attend(h, &kv, None);
        let h = self.final_layer_norm.forward(x.clone());
        x + feed_forward(&self.fc1, &self.fc2, h)
    }
}

/// `model.encoder`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// `conv1`: mels -> d_model, kernel 3, padding 1.
    pub conv1: Conv1d,
    /// `conv2`: d_model -> d_model, kernel 3, stride 2, padding 1.
    pub conv2: Conv1d,
    /// `embed_positions`: the stored sinusoidal table `[1500, d_model]`.
    pub embed_positions: Embedding,
    /// `layers`.
    pub layers: Vec<EncoderLayer>,
    /// `layer_norm`.
    pub layer_norm: LayerNorm,
}

impl Encoder {
    /// Encoder states `[batch, frames / 2, d_model]` of log-mel features `[batch, mels, frames]`.
    pub fn forward(&self, mel: Tensor<3>) -> Tensor<3> {
        let x = gelu(self.conv1.forward(mel));
        let x = gelu(self.conv2.forward(x)).swap_dims(1, 2);
        let [_, len, d] = x.dims();
        let positions = self.embed_positions.weight.val().narrow(0, 0, len);
        let mut x = x + positions.reshape([1, len, d]);
        for layer in &self.layers {
            x = layer.forward(x);
        }
        self.layer_norm.forward(x)
    }
}

/// `model.decoder.layers.N`.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// `self_attn` (causal).
    pub self_attn: Attention,
    /// `self_attn_layer_norm`.
    pub self_attn_layer_norm: LayerNorm,
    /// `encoder_attn`: on the encoder states.
    pub encoder_attn: Attention,
    /// `encoder_attn_layer_norm`.
    pub encoder_attn_layer_norm: LayerNorm,
    /// `fc1`.
    pub fc1: Linear,
    /// `fc2`.
    pub fc2: Linear,
    /// `final_layer_norm`.
    pub final_layer_norm: LayerNorm,
}

/// One decoder layer's cache while generating: its own keys and values so far and the
/// cross-attention's (fixed).
#[derive(Debug, Clone)]
pub struct LayerCache {
    own: Option<KeyValues>,
    cross: KeyValues,
}

impl DecoderLayer {
    /// `x` `[batch, len, d]` attending to itself (through `cache.own`, extended with `x`'s
    /// keys and values) under `mask`, then to the encoder (`cache.cross`).
    fn forward(&self, x: Tensor<3>, cache: &mut LayerCache, mask: Option<Tensor<2>>) -> Tensor<3> {
        let h = self.self_attn_layer_norm.forward(x.clone());
        let new = self.self_attn.key_values(h.clone());
        let own = match cache.own.take() {
            Some(old) => KeyValues {
                k: Tensor::cat(vec![old.k, new.k], 2),
                v: Tensor::cat(vec![old.v, new.v], 2),
            },
            None => new,
        };
        let x = x + self.self_attn.attend(h, &own, mask);
        cache.own = Some(own);
        let h = self.encoder_attn_layer_norm.forward(x.clone());
        let x = x + self.encoder_attn.attend(h, &cache.cross, None);
        let h = self.final_layer_norm.forward(x.clone());
        x + feed_forward(&self.fc1, &self.fc2, h)
    }
}

/// `model.decoder`.
#[derive(Module, Debug)]
pub struct Decoder {
    /// `embed_tokens` (also the output projection, tied).
    pub embed_tokens: Embedding,
    /// `embed_positions` `[448, d_model]`.
    pub embed_positions: Embedding,
    /// `layers`.
    pub layers: Vec<DecoderLayer>,
    /// `layer_norm`.
    pub layer_norm: LayerNorm,
}

/// The decoder's state while generating: a cache per layer and the tokens seen.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    layers: Vec<LayerCache>,
    /// Tokens run through the decoder so far (the next one's position).
    pub len: usize,
}

impl Decoder {
    /// A fresh cache for `encoder` states `[batch, positions, d]`: every layer's
    /// cross-attention keys and values.
    pub fn cache(&self, encoder: Tensor<3>) -> DecoderCache {
        DecoderCache {
            layers: self
                .layers
                .iter()
                .map(|l| LayerCache {
                    own: None,
                    cross: l.encoder_attn.key_values(encoder.clone()),
                })
                .collect(),
            len: 0,
        }
    }

    /// Hidden states `[batch, len, d]` (after the final LayerNorm) of `tokens` `[batch, len]`
    /// following the `cache.len` tokens already in `cache`.
    pub fn forward(&self, tokens: Tensor<2, Int>, cache: &mut DecoderCache) -> Tensor<3> {
        let [_, len] = tokens.dims();
        let device = tokens.device();
        let d = self.embed_tokens.weight.dims()[1];
        let start = cache.len;
        let positions = self.embed_positions.weight.val().narrow(0, start, len);
        let mut x = self.embed_tokens.forward(tokens) + positions.reshape([1, len, d]);
        // Causal: position i sees the cache and positions up to i of this call.
        let mask = (len > 1).then(|| causal_mask(start, len, &device));
        for (layer, c) in self.layers.iter().zip(&mut cache.layers) {
            x = layer.forward(x, c, mask.clone());
        }
        cache.len += len;
        self.layer_norm.forward(x)
    }

    /// Logits `[batch, len, vocab]` of hidden states (the tied output projection).
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let [batch, len, d] = hidden.dims();
        let vocab = self.embed_tokens.weight.dims()[0];
        hidden
            .reshape([batch * len, d])
            .matmul(self.embed_tokens.weight.val().transpose())
            .reshape([batch, len, vocab])
    }
}

/// Additive mask `[len, start + len]`: 0 where query `i` (at `start + i`) may see key `j`
/// (`j <= start + i`), a large negative number elsewhere.
fn causal_mask(start: usize, len: usize, device: &Device) -> Tensor<2> {
    let total = start + len;
    let mut values = vec![0.0f32; len * total];
    for i in 0..len {
        for j in (start + i + 1)..total {
            values[i * total + j] = f32::MIN;
        }
    }
    Tensor::from_data(TensorData::new(values, [len, total]), device)
}

/// `model`: HF's `WhisperModel`.
#[derive(Module, Debug)]
pub struct WhisperModel {
    /// `model.encoder`.
    pub encoder: Encoder,
    /// `model.decoder`.
    pub decoder: Decoder,
}

/// `WhisperForConditionalGeneration` (its `proj_out` is `model.decoder.embed_tokens`).
#[derive(Module, Debug)]
pub struct Whisper {
    /// `model`.
    pub model: WhisperModel,
}

/// HF's key for the tied output projection; a checkpoint that stores it stores a copy.
const TIED: &str = "proj_out.weight";

impl Whisper {
    /// A randomly initialised model of `config`'s shape.
    pub fn new(config: &WhisperConfig, device: &Device) -> Self {
        let d = config.d_model;
        let norm = || LayerNormConfig::new(d).with_epsilon(1e-5).init(device);
        let encoder_layers = (0..config.encoder_layers)
            .map(|_| EncoderLayer {
                self_attn: Attention::new(d, config.encoder_attention_heads, device),
                self_attn_layer_norm: norm(),
                fc1: Linear::new(d, config.encoder_ffn_dim, device),
                fc2: Linear::new(config.encoder_ffn_dim, d, device),
                final_layer_norm: norm(),
            })
            .collect();
        let decoder_layers = (0..config.decoder_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention::new(d, config.decoder_attention_heads, device),
                self_attn_layer_norm: norm(),
                encoder_attn: Attention::new(d, config.decoder_attention_heads, device),
                encoder_attn_layer_norm: norm(),
                fc1: Linear::new(d, config.decoder_ffn_dim, device),
                fc2: Linear::new(config.decoder_ffn_dim, d, device),
                final_layer_norm: norm(),
            })
            .collect();
        Self {
            model: WhisperModel {
                encoder: Encoder {
                    conv1: Conv1dConfig::new(config.num_mel_bins, d, 3)
                        .with_padding(PaddingConfig1d::Explicit(1, 1))
                        .init(device),
                    conv2: Conv1dConfig::new(d, d, 3)
                        .with_stride(2)
                        .with_padding(PaddingConfig1d::Explicit(1, 1))
                        .init(device),
                    embed_positions: EmbeddingConfig::new(config.max_source_positions, d)
                        .init(device),
                    layers: encoder_layers,
                    layer_norm: norm(),
                },
                decoder: Decoder {
                    embed_tokens: EmbeddingConfig::new(config.vocab_size, d).init(device),
                    embed_positions: EmbeddingConfig::new(config.max_target_positions, d)
                        .init(device),
                    layers: decoder_layers,
                    layer_norm: norm(),
                },
            },
        }
    }

    /// Load a HF checkpoint described by `config` (checked against its tensors first).
    pub fn load(
        config: &WhisperConfig,
        source: &WeightSource,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let keys = inspect(source)?;
        config.check(&keys)?;
        let mut model = Self::new(config, device);
        let report = load_into(&mut model, source, &[], &[TIED])?;
        Ok((model, report))
    }

    /// Encoder states of log-mel features `[batch, mels, frames]`.
    pub fn encode(&self, mel: Tensor<3>) -> Tensor<3> {
        self.model.encoder.forward(mel)
    }

    /// Teacher-forced logits `[batch, len, vocab]` of `tokens` `[batch, len]` on `encoder`
    /// states.
    pub fn logits(&self, encoder: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<3> {
        let decoder = &self.model.decoder;
        let mut cache = decoder.cache(encoder);
        decoder.logits(decoder.forward(tokens, &mut cache))
    }

    /// Mean cross-entropy of `labels` `[batch, len]` (`-100`: not scored) under the
    /// teacher-forced logits of `inputs` `[batch, len]` (the labels shifted right after the
    /// start token), with `smoothing` label smoothing (0: none), as HF's
    /// `WhisperForConditionalGeneration` loss.
    pub fn loss(
        &self,
        encoder: Tensor<3>,
        inputs: Tensor<2, Int>,
        labels: Tensor<2, Int>,
        smoothing: f64,
    ) -> Tensor<1> {
        let scored = labels.clone().greater_equal_elem(0).float().sum();
        self.loss_sum(encoder, inputs, labels, smoothing) / scored.clamp_min(1.0)
    }

    /// The sum of [`Self::loss`]'s token losses: a batch cut into micro-batches divides each
    /// one's by the whole batch's scored tokens, so that their gradients add up to the whole
    /// batch's.
    pub fn loss_sum(
        &self,
        encoder: Tensor<3>,
        inputs: Tensor<2, Int>,
        labels: Tensor<2, Int>,
        smoothing: f64,
    ) -> Tensor<1> {
        let logits = self.logits(encoder, inputs);
        let [batch, len, vocab] = logits.dims();
        let logp = log_softmax(logits.reshape([batch * len, vocab]), 1);
        let labels = labels.reshape([batch * len]);
        let scored = labels.clone().greater_equal_elem(0);
        let weight = scored.clone().float();
        let target = labels
            .mask_fill(scored.bool_not(), 0)
            .reshape([batch * len, 1]);
        let nll = logp.clone().gather(1, target).reshape([batch * len]).neg();
        let per_token = if smoothing > 0.0 {
            let uniform = logp.mean_dim(1).reshape([batch * len]).neg();
            nll * (1.0 - smoothing) + uniform * smoothing
        } else {
            nll
        };
        (per_token * weight).sum()
    }

    /// Greedy decoding of each clip's `encoder` states: the generated tokens (prompt and
    /// end-of-text left out), at most `max_tokens` each. (Each step's tokens are read back,
    /// awaited: WebGPU's reads are async.)
    pub async fn generate(
        &self,
        config: &WhisperConfig,
        encoder: Tensor<3>,
        max_tokens: usize,
    ) -> Result<Vec<Vec<u32>>> {
        let decoder = &self.model.decoder;
        let [batch, _, _] = encoder.dims();
        let device = encoder.device();
        let vocab = config.vocab_size;
        let prompt = config.prompt();
        let limit = config
            .max_target_positions
            .saturating_sub(prompt.len())
            .min(max_tokens);
        let mut suppress = vec![0.0f32; vocab];
        for &t in &config.suppress_tokens {
            if (t as usize) < vocab {
                suppress[t as usize] = f32::NEG_INFINITY;
            }
        }
        let mut first = suppress.clone();
        for &t in &config.begin_suppress_tokens {
            if (t as usize) < vocab {
                first[t as usize] = f32::NEG_INFINITY;
            }
        }
        let bias = |values: &[f32]| {
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [vocab]), &device)
                .reshape([1, vocab])
        };
        let (suppress, first) = (bias(&suppress), bias(&first));
        let mut cache = decoder.cache(encoder);
        let ids: Vec<i64> = (0..batch)
            .flat_map(|_| prompt.iter().map(|&t| t as i64))
            .collect();
        let mut input =
            Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, prompt.len()]), &device);
        let mut out = vec![Vec::new(); batch];
        let mut done = vec![false; batch];
        for step in 0..limit {
            let hidden = decoder.forward(input, &mut cache);
            let [_, len, _] = hidden.dims();
            let last = hidden.narrow(1, len - 1, 1);
            let logits = decoder.logits(last).reshape([batch, vocab])
                + if step == 0 {
                    first.clone()
                } else {
                    suppress.clone()
                };
            let next = logits.argmax(1).reshape([batch]);
            let picked: Vec<i64> = next
                .clone()
                .into_data_async()
                .await
                .map_err(crate::error::compute)?
                .iter::<i64>()
                .collect();
            for (b, &t) in picked.iter().enumerate() {
                if done[b] {
                    continue;
                }
                if t as u32 == config.eos_token_id {
                    done[b] = true;
                } else {
                    out[b].push(t as u32);
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            input = next.reshape([batch, 1]);
        }
        Ok(out)
    }
}

impl Whisper {
    /// A copy on `device` (autodiff, to train) with gradients on for the decoder and, with
    /// `unfreeze`, the encoder's last N layers or all of it (`None`: the decoder alone; the
    /// encoder's states are then the same every epoch). Returns the model and the decoder's
    /// parameters (trained at the phase's `lr`; the encoder at its `backbone_lr`).
    pub fn trainable(
        &self,
        unfreeze: Option<super::Unfreeze>,
        device: &Device,
    ) -> Result<(Self, ParamGroup)> {
        let net = self.clone().fork(device).train();
        let decoder = ParamGroup::ids_from_module(net.model.decoder.clone());
        let encoder = &net.model.encoder;
        let stem = ParamGroup::ids_from_module(encoder.conv1.clone())
            .fuse(&ParamGroup::ids_from_module(encoder.conv2.clone()))
            .fuse(&ParamGroup::ids_from_module(
                encoder.embed_positions.clone(),
            ));
        let mut blocks = vec![stem];
        let last = encoder.layers.len().saturating_sub(1);
        for (i, layer) in encoder.layers.iter().enumerate() {
            let mut block = ParamGroup::ids_from_module(layer.clone());
            if i == last {
                // The final LayerNorm trains with the last layer.
                block = block.fuse(&ParamGroup::ids_from_module(encoder.layer_norm.clone()));
            }
            blocks.push(block);
        }
        let Some(group) = super::unfrozen(&decoder, &blocks, unfreeze, "the encoder")? else {
            return Ok((net.set_require_grad(true), decoder));
        };
        Ok((net.no_grad().set_require_grad_group(group, true), decoder))
    }

    /// A copy on `device` (autodiff) for a LoRA phase: adapters on the layers `options`
    /// targets (drawn from `seed`; kept when the model has them already), gradients on for
    /// the adapters alone. Whisper has no new head: every other weight stays as it was.
    pub fn trainable_lora(
        &self,
        options: &LoraOptions,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut net = self.clone();
        if !lora::has_adapters(&mut net) {
            lora::add_adapters(&mut net, options, seed)?;
        }
        let mut net = net.fork(device).train();
        let group = lora::adapter_group(&mut net, ParamGroup::from_ids(Vec::new()));
        Ok(net.freeze().unfreeze_group(group))
    }

    /// The model with every adapter merged into its weights.
    pub fn merged(mut self) -> Self {
        lora::merge(&mut self);
        self
    }
}

/// An attention's four projections, under `at` (`model.encoder.layers.0.self_attn`).
fn attention_sites<'a>(
    sites: &mut Vec<(String, &'a mut dyn LoraSite)>,
    at: &str,
    a: &'a mut Attention,
) {
    for (name, l) in [
        ("q_proj", &mut a.q_proj),
        ("k_proj", &mut a.k_proj),
        ("v_proj", &mut a.v_proj),
        ("out_proj", &mut a.out_proj),
    ] {
        sites.push((format!("{at}.{name}"), l as &mut dyn LoraSite));
    }
}

/// Adapters on Whisper go where PEFT puts them on `WhisperForConditionalGeneration`: by
/// default every `q_proj` and `v_proj` (the encoder's self-attention, the decoder's self- and
/// cross-attention), named as the checkpoint names them.
impl Adaptable for Whisper {
    fn default_targets(&self) -> Option<&'static [&'static str]> {
        Some(&["q_proj", "v_proj"])
    }

    fn sites(&mut self) -> Vec<(String, &mut dyn LoraSite)> {
        let mut sites: Vec<(String, &mut dyn LoraSite)> = Vec::new();
        for (i, l) in self.model.encoder.layers.iter_mut().enumerate() {
            let at = format!("model.encoder.layers.{i}");
            attention_sites(&mut sites, &format!("{at}.self_attn"), &mut l.self_attn);
            sites.push((format!("{at}.fc1"), &mut l.fc1));
            sites.push((format!("{at}.fc2"), &mut l.fc2));
        }
        for (i, l) in self.model.decoder.layers.iter_mut().enumerate() {
            let at = format!("model.decoder.layers.{i}");
            attention_sites(&mut sites, &format!("{at}.self_attn"), &mut l.self_attn);
            attention_sites(
                &mut sites,
                &format!("{at}.encoder_attn"),
                &mut l.encoder_attn,
            );
            sites.push((format!("{at}.fc1"), &mut l.fc1));
            sites.push((format!("{at}.fc2"), &mut l.fc2));
        }
        sites
    }
}

/// Whisper with what it needs to hear and write: its config, its tokenizer, the log-mel front
/// end, and the companion files exported with it (generation_config.json,
/// preprocessor_config.json, ...).
#[derive(Debug, Clone)]
pub struct Transcriber {
    /// The network.
    pub net: Whisper,
    /// Its config.
    pub config: WhisperConfig,
    /// config.json as given (exported unchanged: fine-tuning changes no field of it).
    pub config_json: String,
    /// The tokenizer.
    pub tokenizer: tokenizers::Tokenizer,
    /// tokenizer.json's bytes (exported as they came).
    pub tokenizer_json: Vec<u8>,
    /// Other files of the model's folder, exported with it.
    pub extras: Vec<(String, Vec<u8>)>,
    /// The log-mel front end.
    pub mel: std::sync::Arc<crate::data::mel::WhisperMel>,
}

/// The companions of a Whisper folder kept and exported with it.
pub const EXTRAS: [&str; 6] = [
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "normalizer.json",
];

impl Transcriber {
    /// Load a Whisper folder's files: config.json (`config`, named `config_name` in errors),
    /// tokenizer.json and the weights, on `device`.
    pub fn load(
        config: &str,
        config_name: &str,
        tokenizer: &[u8],
        tokenizer_name: &str,
        weights: &WeightSource,
        extras: Vec<(String, Vec<u8>)>,
        device: &Device,
    ) -> Result<Self> {
        let parsed = WhisperConfig::from_json(config, config_name)?;
        let tok = crate::data::tokenize::parse(tokenizer).map_err(|message| Error::Weights {
            file: tokenizer_name.into(),
            message,
        })?;
        for (id, what) in [
            (parsed.decoder_start_token_id, "decoder_start_token_id"),
            (parsed.eos_token_id, "eos_token_id"),
        ] {
            if tok.id_to_token(id).is_none() {
                return Err(Error::Weights {
                    file: tokenizer_name.into(),
                    message: format!(
                        "the tokenizer has no token {id} (config.json's {what}): they belong to \
                         different models"
                    ),
                });
            }
        }
        let (net, _) = Whisper::load(&parsed, weights, device)?;
        Ok(Self {
            net,
            mel: std::sync::Arc::new(crate::data::mel::WhisperMel::new(parsed.num_mel_bins)),
            config: parsed,
            config_json: config.to_string(),
            tokenizer: tok,
            tokenizer_json: tokenizer.to_vec(),
            extras,
        })
    }

    /// The token ids of a transcript as Whisper writes one (a leading space; no special
    /// tokens).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let text = text.trim();
        let spaced = format!(" {text}");
        let enc = self
            .tokenizer
            .encode(spaced.as_str(), false)
            .map_err(|e| Error::Data(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Tokens a transcript may have: the decoder's positions less the prompt and the end.
    pub fn max_tokens(&self) -> usize {
        self.config
            .max_target_positions
            .saturating_sub(self.config.prompt().len() + 1)
    }

    /// (decoder inputs, labels) of a transcript's tokens: labels are the prompt after its
    /// first token, the text and end-of-text; the inputs are the labels shifted right after
    /// the start token (HF's `shift_tokens_right`).
    pub fn teacher(&self, tokens: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let prompt = self.config.prompt();
        let mut labels: Vec<u32> = prompt[1..].to_vec();
        labels.extend_from_slice(tokens);
        labels.push(self.config.eos_token_id);
        let mut inputs = vec![prompt[0]];
        inputs.extend_from_slice(&labels[..labels.len() - 1]);
        (inputs, labels)
    }

    /// Text of generated tokens (special and unknown tokens left out).
    pub fn decode(&self, ids: &[u32]) -> String {
        let known: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| self.tokenizer.id_to_token(id).is_some())
            .collect();
        self.tokenizer.decode(&known, true).unwrap_or_default()
    }

    /// Log-mel input `[n, mels, 3000]` of clips (16 kHz mono) on `device`.
    pub fn features(&self, clips: &[&[f32]], device: &Device) -> Tensor<3> {
        let mels = self.mel.mels();
        let frames = crate::data::mel::WHISPER_FRAMES;
        let v: Vec<f32> = clips.iter().flat_map(|c| self.mel.features(c)).collect();
        Tensor::from_data(TensorData::new(v, [clips.len(), mels, frames]), device)
    }

    /// Transcripts of `clips`, `batch` at a time (greedy).
    pub async fn transcribe(
        &self,
        clips: &[&[f32]],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(clips.len());
        for chunk in clips.chunks(batch.max(1)) {
            let encoder = self.net.encode(self.features(chunk, device));
            let ids = self
                .net
                .generate(&self.config, encoder, self.max_tokens())
                .await?;
            out.extend(ids.iter().map(|t| self.decode(t)));
        }
        Ok(out)
    }

    /// A copy on the CPU device with every tensor read back (awaited reads: WebGPU's are
    /// async).
    pub async fn to_host(&self) -> Result<Self> {
        Ok(Self {
            net: super::read_back(&self.net).await?,
            ..self.clone()
        })
    }

    /// The model as a Hugging Face folder `WhisperForConditionalGeneration.from_pretrained`
    /// loads: model.safetensors (HF names; the tied output projection not stored, as
    /// `save_pretrained` does), config.json, tokenizer.json and the companions.
    /// With adapters, the weights are merged and `adapter/` holds PEFT's folder (`dropout`,
    /// the adapters' own, goes in its config).
    pub fn export(
        &self,
        metadata: &[(&str, String)],
        dropout: f64,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut meta = vec![("format", "pt".to_string())];
        meta.extend(metadata.iter().map(|(k, v)| (*k, v.clone())));
        // Adapters merged into the full model; PEFT's folder beside it.
        let mut net = self.net.clone();
        let merged = net.clone().merged();
        let weights = crate::weights::save_safetensors(&merged, &[], &meta)?;
        let adapter = lora::peft_files(&mut net, &weights, None, None, dropout, None)?;
        let mut files = vec![
            ("model.safetensors".to_string(), weights),
            (
                "config.json".to_string(),
                self.config_json.clone().into_bytes(),
            ),
            ("tokenizer.json".to_string(), self.tokenizer_json.clone()),
        ];
        files.extend(self.extras.iter().cloned());
        files.extend(adapter.into_iter().flatten());
        Ok(files)
    }
}
