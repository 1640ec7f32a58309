//! A BERT-family encoder with a new classification head on a pooled sentence vector, its
//! tokenizer and its config: what the text recipe trains and exports as a Hugging Face
//! `BertForSequenceClassification` folder (`bert.`-prefixed encoder keys, `classifier.*`).

use burn::module::ParamGroup;
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::Unfreeze;
use super::bert::{self, Bert, BertConfig, cls_pool, l2_normalize, mean_pool};
use super::head::{Head, HeadConfig};
use super::lora::{self, Adaptable, LoraOptions, LoraSite};
use crate::data::tokenize::{TextTokenizer, Tokens};
use crate::weights::{WeightSource, inspect, load_into, save_safetensors};
use crate::{Error, Result};

/// How the token states become one sentence vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the real (unpadded) tokens: sentence-transformers' default.
    #[default]
    Mean,
    /// The first (`[CLS]`) token's state.
    Cls,
    /// HF's pooler, tanh(dense(CLS)): exactly what `BertForSequenceClassification` classifies.
    Pooler,
}

/// Text input settings: where inputs are cut and how they are pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextOptions {
    /// Tokens per input (special tokens included); longer inputs are cut and counted.
    pub max_length: usize,
    /// Pooling of the token states.
    pub pooling: Pooling,
    /// Scale the pooled vector to unit length (sentence-transformers' Normalize).
    pub normalize: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            max_length: 128,
            pooling: Pooling::Mean,
            normalize: false,
        }
    }
}

/// The trainable part: encoder and head.
#[derive(Module, Debug)]
pub struct TextClassifier {
    /// The encoder (`bert.*` in the exported file).
    pub bert: Bert,
    /// The new head (`classifier.*`).
    pub classifier: Head,
    /// Dropout before the head while training the whole model (config's hidden_dropout_prob,
    /// as `BertForSequenceClassification` has it).
    dropout: Dropout,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    normalize: bool,
}

impl TextClassifier {
    /// An encoder and a head, with the config's dropout before the head and `options`'
    /// pooling.
    pub fn new(bert: Bert, classifier: Head, config: &BertConfig, options: &TextOptions) -> Self {
        Self {
            bert,
            classifier,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            pooling: options.pooling,
            normalize: options.normalize,
        }
    }

    /// Pooled sentence vectors `[batch, hidden]` of a batch of tokens.
    pub fn features(&self, tokens: &Tokens, device: &Device) -> Result<Tensor<2>> {
        let (ids, mask, types) = tokens.tensors(device);
        let hidden = self.bert.forward(ids, mask.clone(), types);
        let pooled = match self.pooling {
            Pooling::Mean => mean_pool(hidden, mask),
            Pooling::Cls => cls_pool(hidden),
            Pooling::Pooler => self.bert.pool(hidden).ok_or_else(|| Error::Recipe {
                field: "text.pooling".into(),
                message: "\"pooler\" needs a checkpoint with pooler.dense weights; this one has \
                          none (use \"mean\" or \"cls\")"
                    .into(),
            })?,
        };
        Ok(if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        })
    }

    /// Class logits of pooled vectors, through dropout (active only while training).
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(features))
    }

    /// Class logits of a batch of tokens.
    pub fn forward(&self, tokens: &Tokens, device: &Device) -> Result<Tensor<2>> {
        Ok(self.logits(self.features(tokens, device)?))
    }
}

/// Encoder + head + tokenizer + config.
#[derive(Debug, Clone)]
pub struct TextModel {
    /// The network.
    pub net: TextClassifier,
    /// The encoder's config.json, parsed.
    pub config: BertConfig,
    /// The config.json as given (kept whole for export).
    pub config_json: serde_json::Value,
    /// The tokenizer.
    pub tokenizer: TextTokenizer,
    /// Pooling and length.
    pub options: TextOptions,
    /// Class names, when the checkpoint is a classifier (id2label).
    pub labels: Option<Vec<String>>,
}

impl TextModel {
    /// Load a BERT checkpoint (`BertModel`, or a `BertForSequenceClassification` such as one
    /// tabtune exported, whose head and labels come back too) with its config.json and
    /// tokenizer.json. `options` sets pooling and length; `None` takes those a tabtune export
    /// was trained with (its config's `tabtune` section), else the defaults.
    pub fn load(
        config_json: &str,
        config_name: &str,
        tokenizer_json: &[u8],
        tokenizer_name: &str,
        weights: &WeightSource,
        options: Option<&TextOptions>,
        device: &Device,
    ) -> Result<Self> {
        let config = BertConfig::from_json(config_json, config_name)?;
        let value: serde_json::Value =
            serde_json::from_str(config_json).map_err(|err| Error::Weights {
                file: config_name.into(),
                message: err.to_string(),
            })?;
        let keys = inspect(weights)?;
        let options = match (options, value.get("tabtune")) {
            (Some(options), _) => options.clone(),
            (None, Some(saved)) => {
                serde_json::from_value(saved.clone()).map_err(|err| Error::Weights {
                    file: config_name.into(),
                    message: format!("bad \"tabtune\" section: {err}"),
                })?
            }
            // A classifier saved by transformers (`save_pretrained` after HF's Trainer):
            // `BertForSequenceClassification` classifies the pooler's output.
            (None, None)
                if keys.contains_key("classifier.weight")
                    && keys.contains_key("bert.pooler.dense.weight") =>
            {
                TextOptions {
                    pooling: Pooling::Pooler,
                    ..TextOptions::default()
                }
            }
            (None, None) => TextOptions::default(),
        };
        let tokenizer = TextTokenizer::from_bytes(
            tokenizer_json,
            tokenizer_name,
            config.vocab_size,
            config.max_position_embeddings,
            options.max_length,
        )?;
        bert::check_config(&config, &keys)?;
        // The head a tabtune export carries: `classifier.*` (Linear, as HF's
        // BertForSequenceClassification) or `classifier.dense/out_proj.*` (the MLP head).
        let hidden = config.hidden_size;
        let head = exported_head(&keys, hidden, &format!("hidden_size {hidden}"), weights)?;
        let labels = match (head, value.get("id2label")) {
            (Some((n, _)), Some(map)) => Some(id2label(map, n, config_name)?),
            _ => None,
        };
        let net = match head {
            // A classifier: encoder and head from the file.
            Some((n, mlp)) => {
                let prefix = bert::key_prefix(&keys);
                let pooler = keys.contains_key(&format!("{prefix}pooler.dense.weight"));
                let head = HeadConfig::new(hidden, n).with_hidden(mlp);
                let mut net = TextClassifier::new(
                    Bert::new(&config, pooler, device)?,
                    head.init_seeded(0, device),
                    &config,
                    &options,
                );
                let mut map: Vec<(String, String)> =
                    bert::weight_map(prefix, config.num_hidden_layers)
                        .into_iter()
                        .map(|(from, to)| (from, format!("bert.{to}")))
                        .collect();
                map.extend(head_map(mlp.is_some()));
                load_into(&mut net, weights, &map, bert::IGNORED)?;
                net
            }
            // An encoder alone: a 2-class head until the data says how many.
            None => {
                let (bert, _) = Bert::load(&config, weights, device)?;
                let head = HeadConfig::new(hidden, 2).init_seeded(0, device);
                TextClassifier::new(bert, head, &config, &options)
            }
        };
        Ok(Self {
            net,
            config,
            config_json: value,
            tokenizer,
            options,
            labels,
        })
    }

    /// Read `dir/config.json`, `dir/tokenizer.json` and `dir/model.safetensors`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(
        dir: &std::path::Path,
        options: Option<&TextOptions>,
        device: &Device,
    ) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|err| Error::Weights {
                file: path.display().to_string(),
                message: format!("cannot read: {err}"),
            })
        };
        let config = read("config.json")?;
        let config = String::from_utf8(config).map_err(|_| Error::Weights {
            file: dir.join("config.json").display().to_string(),
            message: "not UTF-8 text".into(),
        })?;
        let tokenizer = read("tokenizer.json")?;
        Self::load(
            &config,
            &dir.join("config.json").display().to_string(),
            &tokenizer,
            &dir.join("tokenizer.json").display().to_string(),
            &WeightSource::Path(dir.join("model.safetensors")),
            options,
            device,
        )
    }

    /// Width of the pooled vector.
    pub fn feature_dim(&self) -> usize {
        self.config.hidden_size
    }

    /// This model with `head` as its classifier.
    pub fn with_head(mut self, head: Head) -> Self {
        self.net.classifier = head;
        self
    }

    /// Encoder layers, for `Unfreeze::Last(n)`.
    pub fn block_count(&self) -> usize {
        self.net.bert.encoder.layer.len()
    }

    /// `net` ready to train on `device` (autodiff): dropout on, gradients on for the head and,
    /// with `unfreeze`, for the last N encoder layers (and the pooler when it pools) or all.
    /// Returns the net and the head's parameter group (the head's learning rate).
    pub fn trainable(
        &self,
        unfreeze: Option<Unfreeze>,
        device: &Device,
    ) -> Result<(TextClassifier, ParamGroup)> {
        let net = self.net.clone().fork(device).train();
        let head = ParamGroup::ids_from_module(net.classifier.clone());
        let blocks: Vec<ParamGroup> = (net.bert.encoder.layer.iter())
            .map(|layer| ParamGroup::ids_from_module(layer.clone()))
            .collect();
        let Some(mut group) = super::unfrozen(&head, &blocks, unfreeze, "the encoder")? else {
            // Every parameter: a phase before (the head's) may have turned gradients off, and
            // `no_grad` persists across `fork` and `train`.
            return Ok((net.set_require_grad(true), head));
        };
        // The pooler trains with the top layers when it pools.
        if let (Some(Unfreeze::Last(_)), Pooling::Pooler, Some(p)) =
            (unfreeze, self.options.pooling, &net.bert.pooler)
        {
            group = group.fuse(&ParamGroup::ids_from_module(p.clone()));
        }
        Ok((net.no_grad().set_require_grad_group(group, true), head))
    }

    /// `net` ready for a LoRA phase on `device` (autodiff): adapters on the encoder's layers
    /// that `options` targets (drawn from `seed`; kept when the net has them already), dropout
    /// on, gradients on for the adapters and the head only. Returns the net and the head's
    /// group.
    pub fn trainable_lora(
        &self,
        options: &LoraOptions,
        seed: u64,
        device: &Device,
    ) -> Result<(TextClassifier, ParamGroup)> {
        let mut net = self.net.clone().fork(device).train();
        if !lora::has_adapters(&mut net) {
            lora::add_adapters(&mut net, options, seed)?;
        }
        let head = ParamGroup::ids_from_module(net.classifier.clone());
        let group = lora::adapter_group(&mut net, head.clone());
        Ok((net.no_grad().set_require_grad_group(group, true), head))
    }

    /// The Hugging Face `config.json` of the fine-tuned classifier: the encoder's config with
    /// `architectures`, `id2label`/`label2id`, and tabtune's pooling settings.
    pub fn hf_config(&self, classes: &[String]) -> serde_json::Value {
        let mut config = self.config_json.clone();
        let map = config.as_object_mut().expect("config.json is an object");
        map.insert(
            "architectures".into(),
            serde_json::json!(["BertForSequenceClassification"]),
        );
        map.insert(
            "id2label".into(),
            classes
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), serde_json::json!(c)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
        map.insert(
            "label2id".into(),
            classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), serde_json::json!(i)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
        map.insert(
            "problem_type".into(),
            serde_json::json!("single_label_classification"),
        );
        map.insert(
            "tabtune".into(),
            serde_json::to_value(&self.options).expect("options serialise"),
        );
        config
    }

    /// The model as safetensors under Hugging Face's `BertForSequenceClassification` names.
    pub fn to_safetensors(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let mut net = self.net.clone();
        if lora::has_adapters(&mut net) {
            lora::merge(&mut net);
            return Self {
                net,
                ..self.clone()
            }
            .to_safetensors(metadata);
        }
        let mut map: Vec<(String, String)> = bert::weight_map("bert.", self.block_count())
            .into_iter()
            .map(|(from, to)| (from, format!("bert.{to}")))
            .collect();
        map.extend(head_map(self.net.classifier.hidden.is_some()));
        save_safetensors(&self.net, &map, metadata)
    }

    /// A copy with every tensor read back to the CPU device (awaited: WebGPU reads are async).
    pub async fn to_host(&self) -> Result<Self> {
        Ok(Self {
            net: super::read_back(&self.net).await?,
            ..self.clone()
        })
    }
}

impl Adaptable for TextClassifier {
    fn default_targets(&self) -> Option<&'static [&'static str]> {
        self.bert.default_targets()
    }

    /// The encoder's layers under `BertForSequenceClassification`'s names (`bert.` + ...).
    fn sites(&mut self) -> Vec<(String, &mut dyn LoraSite)> {
        self.bert
            .sites()
            .into_iter()
            .map(|(name, site)| (format!("bert.{name}"), site))
            .collect()
    }
}

/// Checkpoint names of the head -> module paths: HF's `classifier` for a Linear head; for the
/// MLP, the `dense` / `out_proj` names of HF's RoBERTa-style classification heads.
/// The head a tabtune export carries, read from its tensor names: `classifier.*` (one Linear,
/// as Hugging Face's `*ForSequenceClassification`) or `classifier.dense/out_proj.*` (the MLP
/// head), taking `width` inputs: `Some((classes, hidden width of an MLP))`, `None` for a file
/// without a head. A head of another input width is an error naming `what` it should take.
pub(crate) fn exported_head(
    keys: &std::collections::BTreeMap<String, Vec<usize>>,
    width: usize,
    what: &str,
    weights: &WeightSource,
) -> Result<Option<(usize, Option<usize>)>> {
    match (
        keys.get("classifier.weight"),
        keys.get("classifier.dense.weight"),
    ) {
        (Some(w), _) if w.len() == 2 && w[1] == width => Ok(Some((w[0], None))),
        (_, Some(d)) if d.len() == 2 && d[1] == width => {
            let out = keys.get("classifier.out_proj.weight").map_or(0, |w| w[0]);
            Ok(Some((out, Some(d[0]))))
        }
        (Some(w), _) | (_, Some(w)) => Err(Error::Weights {
            file: weights.name(),
            message: format!("the classifier's first weight {w:?} does not take {what} inputs"),
        }),
        (None, None) => Ok(None),
    }
}

pub(crate) fn head_map(mlp: bool) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = if mlp {
        &[
            ("classifier.dense.", "classifier.hidden."),
            ("classifier.out_proj.", "classifier.linear."),
        ]
    } else {
        &[("classifier.", "classifier.linear.")]
    };
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

pub(crate) fn id2label(map: &serde_json::Value, n: usize, file: &str) -> Result<Vec<String>> {
    let fail = |message: String| Error::Weights {
        file: file.into(),
        message,
    };
    let map = map
        .as_object()
        .ok_or_else(|| fail("id2label is not an object".into()))?;
    (0..n)
        .map(|i| {
            map.get(&i.to_string())
                .and_then(|v| v.as_str())
                .map(String::from)
                .ok_or_else(|| {
                    fail(format!(
                        "id2label has no name for class {i} of the {n} the classifier outputs"
                    ))
                })
        })
        .collect()
}
