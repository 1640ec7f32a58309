//! Architectures, one file each, the new classification head, and [`ImageModel`]: whichever
//! architecture a checkpoint holds, told from its tensor names (never typed by the user).

pub mod config;
pub mod efficientnet_lite;
pub mod head;
pub mod mobilenet_v2;
pub mod resnet;

use std::collections::BTreeMap;

use burn::module::ParamGroup;
use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use config::ModelConfig;
pub use efficientnet_lite::EfficientNetLite0;
pub use head::{Head, HeadConfig};
pub use mobilenet_v2::MobileNetV2;
pub use resnet::ResNet;

use crate::data::image::{IMAGENET_MEAN, IMAGENET_STD, Preprocess};
use crate::train::recipe::Unfreeze;
use crate::weights::{LoadReport, WeightSource, inspect, load_into, save_safetensors};
use crate::{Error, Result};

/// The image architectures tabtune can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// torchvision MobileNetV2 (1280-d features).
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
}

impl Arch {
    /// The name used in config.json and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet_v2",
        }
    }

    /// The architecture whose key names `keys` are, if any.
    pub fn detect(keys: &BTreeMap<String, Vec<usize>>) -> Option<Self> {
        if keys.contains_key("features.18.0.weight") && keys.contains_key("features.0.0.weight") {
            return Some(Self::MobileNetV2);
        }
        None
    }

    /// Checkpoint key of the classifier's weight (`[classes, features]`).
    fn classifier_key(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "classifier.1.weight",
        }
    }

    /// Whose key names the checkpoint uses (for config.json).
    pub fn key_names(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "torchvision",
        }
    }

    /// Dropout before the classifier while training, as the original model has it.
    pub fn dropout(self) -> f64 {
        match self {
            Self::MobileNetV2 => 0.2,
        }
    }

    /// The input transform the pre-trained weights expect.
    pub fn preprocess(self) -> Preprocess {
        match self {
            Self::MobileNetV2 => Preprocess {
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
                ..Preprocess::default()
            },
        }
    }
}

/// A pre-trained image classifier of any supported architecture. Its final linear layer is
/// the classification head: phase 1 replaces it, phase 2 trains it with the backbone.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ImageModel {
    /// See [`MobileNetV2`].
    MobileNetV2(MobileNetV2),
}

impl ImageModel {
    /// A randomly initialised model with `classes` outputs.
    pub fn new(arch: Arch, classes: usize, device: &Device) -> Result<Self> {
        Ok(match arch {
            Arch::MobileNetV2 => Self::MobileNetV2(MobileNetV2::new(classes, device)),
        })
    }

    /// Load a checkpoint of any supported architecture: the architecture and the classifier's
    /// size come from the tensors in the file. A file of another architecture, a missing or
    /// misshaped tensor, or a truncated file is an error naming the file and the tensor.
    pub fn load(source: &WeightSource, device: &Device) -> Result<(Self, LoadReport)> {
        let keys = inspect(source)?;
        let arch = Arch::detect(&keys).ok_or_else(|| Error::Weights {
            file: source.name(),
            message: format!(
                "not a known image architecture: expected MobileNetV2 (torchvision: \
                 features.0.0.weight ... features.18.0.weight) key names; the file's {} tensors \
                 start with {}",
                keys.len(),
                keys.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        })?;
        let classes = match keys.get(arch.classifier_key()).map(Vec::as_slice) {
            Some([classes, _]) => *classes,
            other => {
                return Err(Error::Weights {
                    file: source.name(),
                    message: format!(
                        "tensor `{}` should be [classes, features], found {other:?}",
                        arch.classifier_key()
                    ),
                });
            }
        };
        let mut model = Self::new(arch, classes, device)?;
        let report = match &mut model {
            Self::MobileNetV2(m) => load_into(m, source, &model_map(arch), IGNORED)?,
        };
        Ok((model, report))
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            Self::MobileNetV2(_) => Arch::MobileNetV2,
        }
    }

    /// Pooled features `[batch, feature_dim]` of normalised images `[batch, 3, H, W]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::MobileNetV2(m) => m.features(images),
        }
    }

    /// Class logits `[batch, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier().forward(self.features(images))
    }

    /// Class logits of pooled features (the classifier alone).
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        self.classifier().forward(features)
    }

    fn classifier(&self) -> &Linear {
        match self {
            Self::MobileNetV2(m) => &m.classifier,
        }
    }

    /// Width of the pooled features.
    pub fn feature_dim(&self) -> usize {
        self.classifier().weight.dims()[0]
    }

    /// Outputs of the classifier.
    pub fn classes(&self) -> usize {
        self.classifier().weight.dims()[1]
    }

    /// The classifier as a [`Head`] (for phase 1 to start from or replace).
    pub fn head(&self) -> Head {
        Head {
            linear: self.classifier().clone(),
        }
    }

    /// This model with its classifier replaced by `head`.
    pub fn with_head(self, head: Head) -> Self {
        match self {
            Self::MobileNetV2(mut m) => {
                m.classifier = head.linear;
                Self::MobileNetV2(m)
            }
        }
    }

    /// The blocks phase 2 may unfreeze, from the input to the output.
    fn units(&self) -> Vec<ParamGroup> {
        match self {
            Self::MobileNetV2(m) => std::iter::once(ParamGroup::ids_from_module(m.stem.clone()))
                .chain(m.blocks.iter().map(|b| ParamGroup::ids_from_module(b.clone())))
                .chain(std::iter::once(ParamGroup::ids_from_module(m.last.clone())))
                .collect(),
        }
    }

    /// Blocks of the backbone, for `Unfreeze::Last(n)`.
    pub fn block_count(&self) -> usize {
        self.units().len()
    }

    /// Ready to train: every BatchNorm in inference mode (running statistics frozen, as the
    /// established recipe keeps them), gradients on for the classifier and, with `unfreeze`,
    /// for the chosen blocks; off for the rest. Returns the model and the classifier's
    /// parameter group (which trains at the head's learning rate).
    pub fn trainable(self, unfreeze: Option<Unfreeze>) -> Result<(Self, ParamGroup)> {
        let units = self.units();
        let n = match unfreeze {
            None => 0,
            Some(Unfreeze::All) => units.len(),
            Some(Unfreeze::Last(n)) if n <= units.len() => n,
            Some(Unfreeze::Last(n)) => {
                return Err(Error::Recipe {
                    field: "finetune.unfreeze".into(),
                    message: format!(
                        "last {n} blocks asked, {} has {} blocks",
                        self.arch().name(),
                        units.len()
                    ),
                });
            }
        };
        let head = ParamGroup::ids_from_module(self.classifier().clone());
        let mut trainable = head.clone();
        for unit in &units[units.len() - n..] {
            trainable = trainable.fuse(unit);
        }
        // freeze() turns every training flag off (BatchNorm uses its running statistics) and
        // gradients off; then the chosen parameters (BatchNorm's affine ones included) get
        // their gradients back, leaving the flags off.
        let model = self.freeze().set_require_grad_group(trainable, true);
        Ok((model, head))
    }

    /// The model as safetensors bytes under the architecture's own (torchvision) key names,
    /// with `num_batches_tracked` for every BatchNorm so `load_state_dict(strict=True)` accepts
    /// it. `metadata` goes in the file's header.
    pub fn to_safetensors(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let map = model_map(self.arch());
        let bn: Vec<String> = map
            .iter()
            .filter(|(_, to)| to.ends_with("bn."))
            .map(|(from, _)| format!("{from}num_batches_tracked"))
            .collect();
        match self {
            Self::MobileNetV2(m) => save_safetensors(m, &map, &bn, metadata),
        }
    }
}

/// Suffixes a checkpoint may hold that have no place in the module.
const IGNORED: &[&str] = &["num_batches_tracked"];

fn model_map(arch: Arch) -> Vec<(String, String)> {
    match arch {
        Arch::MobileNetV2 => mobilenet_v2::weight_map(),
    }
}
