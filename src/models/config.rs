//! config.json next to exported weights: the architecture, the input transform and the labels,
//! in the keys Hugging Face image classifiers use (`id2label`, `label2id`, `num_labels`,
//! `image_mean`, `image_std`), so both tabtune and torchvision/timm/HF users can read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Arch;
use crate::data::image::Preprocess;

/// What config.json says about a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// tabtune's architecture name (`mobilenet_v2`, ...).
    pub architecture: Arch,
    /// Classes the classifier outputs.
    pub num_labels: usize,
    /// Class index (as a string) -> name.
    pub id2label: BTreeMap<String, String>,
    /// Name -> class index.
    pub label2id: BTreeMap<String, usize>,
    /// Side of the square input.
    pub image_size: u32,
    /// Shorter side before the centre crop.
    pub resize: u32,
    /// Per-channel mean on [0, 1] pixels.
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation on [0, 1] pixels.
    pub image_std: [f32; 3],
    /// Naming convention of the weights' keys.
    #[serde(default)]
    pub key_names: String,
}

impl ModelConfig {
    /// The config of an `arch` classifier over `classes`.
    pub fn new(arch: Arch, classes: &[String]) -> Self {
        let pre = arch.preprocess();
        Self {
            architecture: arch,
            num_labels: classes.len(),
            id2label: classes
                .iter()
                .enumerate()
                .map(|(i, c)| (i.to_string(), c.clone()))
                .collect(),
            label2id: classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i))
                .collect(),
            image_size: pre.crop,
            resize: pre.resize,
            image_mean: pre.mean,
            image_std: pre.std,
            key_names: arch.key_names().into(),
        }
    }

    /// The input transform.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            resize: self.resize,
            crop: self.image_size,
            mean: self.image_mean,
            std: self.image_std,
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }
}
