//! Architectures, one file each, the new classification head, and [`ImageModel`]: whichever
//! architecture a checkpoint holds, told from its tensor names (never typed by the user).

pub mod audio;
pub mod bert;
pub mod config;
pub mod efficientnet_lite;
mod fold;
pub mod head;
pub mod info;
pub mod layers;
pub mod lora;
pub mod mobilenet_v2;
pub mod resnet;
pub mod series;
pub mod speech_embedding;
pub mod text;
pub mod whisper;

use std::collections::BTreeMap;

use burn::module::ParamGroup;
use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use audio::{AudioClassifier, AudioModel};
pub use config::ModelConfig;
pub use efficientnet_lite::EfficientNetLite0;
pub use head::{Head, HeadConfig};
pub use info::{ModelInfo, describe};
pub use mobilenet_v2::MobileNetV2;
pub use resnet::ResNet;
pub use series::{SeriesConfig, SeriesModel};
pub use text::{Pooling, TextClassifier, TextModel, TextOptions};

use crate::data::image::{IMAGENET_MEAN, IMAGENET_STD, Preprocess};
use crate::weights::{LoadReport, WeightSource, inspect, load_into, save_safetensors};
use crate::{Error, Result};

/// Which part of the backbone phase 2 trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unfreeze {
    /// Every layer.
    All,
    /// Only the last N blocks of the backbone (the head always trains).
    Last(usize),
}

/// The image architectures tabtune can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// torchvision MobileNetV2 (1280-d features).
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
    /// EfficientNet-Lite0 in lukemelas' `efficientnet_pytorch` layout (1280-d features).
    #[serde(rename = "efficientnet_lite0")]
    EfficientNetLite0,
    /// torchvision ResNet-18 (512-d features).
    #[serde(rename = "resnet18")]
    ResNet18,
    /// torchvision ResNet-34 (512-d features).
    #[serde(rename = "resnet34")]
    ResNet34,
    /// torchvision ResNet-50 (2048-d features).
    #[serde(rename = "resnet50")]
    ResNet50,
}

impl Arch {
    /// The name used in config.json and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet_v2",
            Self::EfficientNetLite0 => "efficientnet_lite0",
            Self::ResNet18 => "resnet18",
            Self::ResNet34 => "resnet34",
            Self::ResNet50 => "resnet50",
        }
    }

    /// The architecture whose key names `keys` are, if any.
    pub fn detect(keys: &BTreeMap<String, Vec<usize>>) -> Option<Self> {
        if keys.contains_key("features.18.0.weight") && keys.contains_key("features.0.0.weight") {
            return Some(Self::MobileNetV2);
        }
        if keys.contains_key("_conv_stem.weight") && keys.contains_key("_conv_head.weight") {
            return Some(Self::EfficientNetLite0);
        }
        if keys.contains_key("layer1.0.conv1.weight") {
            let names: Vec<String> = keys.keys().cloned().collect();
            return match resnet::ResNet::depth_from_keys(&names)? {
                18 => Some(Self::ResNet18),
                34 => Some(Self::ResNet34),
                50 => Some(Self::ResNet50),
                _ => None,
            };
        }
        None
    }

    /// Checkpoint key of the classifier's weight (`[classes, features]`).
    pub(crate) fn classifier_key(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "classifier.1.weight",
            Self::EfficientNetLite0 => "_fc.weight",
            Self::ResNet18 | Self::ResNet34 | Self::ResNet50 => "fc.weight",
        }
    }

    /// The classifier's module name in the checkpoint (PEFT's `modules_to_save`).
    pub fn classifier_module(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "classifier",
            Self::EfficientNetLite0 => "_fc",
            Self::ResNet18 | Self::ResNet34 | Self::ResNet50 => "fc",
        }
    }

    /// Whose key names the checkpoint uses (for config.json).
    pub fn key_names(self) -> &'static str {
        match self {
            Self::EfficientNetLite0 => "efficientnet_pytorch",
            _ => "torchvision",
        }
    }

    /// Dropout before the classifier while training, as the original model has it.
    pub fn dropout(self) -> f64 {
        match self {
            Self::MobileNetV2 | Self::EfficientNetLite0 => 0.2,
            Self::ResNet18 | Self::ResNet34 | Self::ResNet50 => 0.0,
        }
    }

    /// The input transform the pre-trained weights expect.
    pub fn preprocess(self) -> Preprocess {
        let (mean, std) = match self {
            // The TF-Lite convention the weights were trained with: (u8 - 127) / 128.
            Self::EfficientNetLite0 => (efficientnet_lite::MEAN, efficientnet_lite::STD),
            _ => (IMAGENET_MEAN, IMAGENET_STD),
        };
        Preprocess {
            mean,
            std,
            ..Preprocess::default()
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
    /// See [`EfficientNetLite0`].
    EfficientNetLite0(EfficientNetLite0),
    /// See [`ResNet`] (18, 34 or 50).
    ResNet(ResNet),
}

impl ImageModel {
    /// A randomly initialised model with `classes` outputs.
    pub fn new(arch: Arch, classes: usize, device: &Device) -> Result<Self> {
        Ok(match arch {
            Arch::MobileNetV2 => Self::MobileNetV2(MobileNetV2::new(classes, device)),
            Arch::EfficientNetLite0 => {
                Self::EfficientNetLite0(EfficientNetLite0::new(classes, device))
            }
            Arch::ResNet18 => Self::ResNet(ResNet::new(18, classes, device)?),
            Arch::ResNet34 => Self::ResNet(ResNet::new(34, classes, device)?),
            Arch::ResNet50 => Self::ResNet(ResNet::new(50, classes, device)?),
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
                "not a known image architecture: expected the key names of MobileNetV2 \
                 (torchvision: features.0.0.weight ... features.18.0.weight), EfficientNet-Lite0 \
                 (efficientnet_pytorch: _conv_stem.weight ...) or ResNet-18/34/50 (torchvision: \
                 conv1.weight, layer1.0.conv1.weight ...); the file's {} tensors start with {}",
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
        let map = model.weight_map();
        let report = match &mut model {
            Self::MobileNetV2(m) => load_into(m, source, &map, IGNORED)?,
            Self::EfficientNetLite0(m) => load_into(m, source, &map, IGNORED)?,
            Self::ResNet(m) => load_into(m, source, &map, IGNORED)?,
        };
        Ok((model, report))
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            Self::MobileNetV2(_) => Arch::MobileNetV2,
            Self::EfficientNetLite0(_) => Arch::EfficientNetLite0,
            Self::ResNet(m) => match m.depth() {
                18 => Arch::ResNet18,
                34 => Arch::ResNet34,
                _ => Arch::ResNet50,
            },
        }
    }

    /// A copy for inference on the frozen backbone (feature extraction, evaluation,
    /// prediction): every BatchNorm folded into its convolution, which gives the same outputs
    /// in fewer passes over the activations. Not for training or saving: it has no BatchNorm
    /// left to train, and its convolutions carry biases the checkpoint layout does not have.
    pub fn folded(&self) -> Self {
        match self {
            Self::MobileNetV2(m) => Self::MobileNetV2(m.folded()),
            Self::EfficientNetLite0(m) => Self::EfficientNetLite0(m.folded()),
            Self::ResNet(m) => Self::ResNet(m.folded()),
        }
    }

    /// Pooled features `[batch, feature_dim]` of normalised images `[batch, 3, H, W]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::MobileNetV2(m) => m.features(images),
            Self::EfficientNetLite0(m) => m.features(images),
            Self::ResNet(m) => m.features(images),
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
            Self::EfficientNetLite0(m) => &m.classifier,
            Self::ResNet(m) => &m.classifier,
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
        Head::from_linear(self.classifier().clone())
    }

    /// This model with its classifier replaced by `head`.
    pub fn with_head(self, head: Head) -> Self {
        match self {
            Self::MobileNetV2(mut m) => {
                m.classifier = head.linear;
                Self::MobileNetV2(m)
            }
            Self::EfficientNetLite0(mut m) => {
                m.classifier = head.linear;
                Self::EfficientNetLite0(m)
            }
            Self::ResNet(mut m) => {
                m.classifier = head.linear;
                Self::ResNet(m)
            }
        }
    }

    /// The blocks phase 2 may unfreeze, from the input to the output.
    fn units(&self) -> Vec<ParamGroup> {
        fn ids<M: Module>(m: &M) -> ParamGroup {
            ParamGroup::ids_from_module(m.clone())
        }
        match self {
            Self::MobileNetV2(m) => std::iter::once(ids(&m.stem))
                .chain(m.blocks.iter().map(ids))
                .chain(std::iter::once(ids(&m.last)))
                .collect(),
            Self::EfficientNetLite0(m) => std::iter::once(ids(&m.stem))
                .chain(m.blocks.iter().map(ids))
                .chain(std::iter::once(ids(&m.head)))
                .collect(),
            Self::ResNet(m) => std::iter::once(ids(&m.stem))
                .chain(m.blocks.iter().map(ids))
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

    /// Ready for a LoRA phase: adapters on the layers `options` targets (drawn from `seed`),
    /// BatchNorm statistics frozen as in [`Self::trainable`], gradients on for the adapters
    /// and the classifier only. Returns the model and the classifier's group.
    pub fn trainable_lora(
        mut self,
        options: &lora::LoraOptions,
        seed: u64,
    ) -> Result<(Self, ParamGroup)> {
        if !lora::has_adapters(&mut self) {
            lora::add_adapters(&mut self, options, seed)?;
        }
        let head = ParamGroup::ids_from_module(self.classifier().clone());
        let group = lora::adapter_group(&mut self, head.clone());
        // unfreeze_group turns the adapters' dropout back on with their gradients.
        Ok((self.freeze().unfreeze_group(group), head))
    }

    /// The model with every adapter merged into its weights (an ordinary model again).
    pub fn merged(mut self) -> Self {
        lora::merge(&mut self);
        self
    }

    /// The model as safetensors bytes under the architecture's own (torchvision) key names,
    /// with `num_batches_tracked` for every BatchNorm so `load_state_dict(strict=True)` accepts
    /// it. `metadata` goes in the file's header.
    pub fn to_safetensors(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let map = self.weight_map();
        if lora::has_adapters(&mut self.clone()) {
            return self.clone().merged().to_safetensors(metadata);
        }
        match self {
            Self::MobileNetV2(m) => save_safetensors(m, &map, metadata),
            Self::EfficientNetLite0(m) => save_safetensors(m, &map, metadata),
            Self::ResNet(m) => save_safetensors(m, &map, metadata),
        }
    }

    /// Checkpoint key prefix -> module path prefix of this architecture.
    pub fn weight_map(&self) -> Vec<(String, String)> {
        match self {
            Self::MobileNetV2(_) => mobilenet_v2::weight_map(),
            Self::EfficientNetLite0(_) => efficientnet_lite::weight_map(),
            Self::ResNet(m) => m.weight_map(),
        }
    }
}

impl lora::Adaptable for ImageModel {
    fn default_targets(&self) -> Option<&'static [&'static str]> {
        None
    }

    fn sites(&mut self) -> Vec<(String, &mut dyn lora::LoraSite)> {
        let map = self.weight_map();
        let mut sites: Vec<(String, &mut layers::ConvBn)> = Vec::new();
        match self {
            Self::MobileNetV2(m) => {
                sites.push(("stem".into(), &mut m.stem));
                let blocks = m.blocks.iter_mut();
                inverted_residuals(
                    &mut sites,
                    blocks.map(|b| (b.expand.as_mut(), &mut b.depthwise, &mut b.project)),
                );
                sites.push(("last".into(), &mut m.last));
            }
            Self::EfficientNetLite0(m) => {
                sites.push(("stem".into(), &mut m.stem));
                let blocks = m.blocks.iter_mut();
                inverted_residuals(
                    &mut sites,
                    blocks.map(|b| (b.expand.as_mut(), &mut b.depthwise, &mut b.project)),
                );
                sites.push(("head".into(), &mut m.head));
            }
            Self::ResNet(m) => {
                sites.push(("stem".into(), &mut m.stem));
                for (i, b) in m.blocks.iter_mut().enumerate() {
                    sites.push((format!("blocks.{i}.c1"), &mut b.c1));
                    sites.push((format!("blocks.{i}.c2"), &mut b.c2));
                    if let Some(c) = b.c3.as_mut() {
                        sites.push((format!("blocks.{i}.c3"), c));
                    }
                    if let Some(d) = b.downsample.as_mut() {
                        sites.push((format!("blocks.{i}.downsample"), d));
                    }
                }
            }
        }
        sites
            .into_iter()
            .map(|(path, site)| {
                let name = lora::checkpoint_name(&map, &format!("{path}.conv."));
                (name, site as &mut dyn lora::LoraSite)
            })
            .collect()
    }
}

/// The layers of inverted-residual blocks (MobileNetV2's, EfficientNet-Lite's): expansion (when
/// there is one), depthwise and projection, under their module paths `blocks.N.*`.
fn inverted_residuals<'a>(
    sites: &mut Vec<(String, &'a mut layers::ConvBn)>,
    blocks: impl Iterator<
        Item = (
            Option<&'a mut layers::ConvBn>,
            &'a mut layers::ConvBn,
            &'a mut layers::ConvBn,
        ),
    >,
) {
    for (i, (expand, depthwise, project)) in blocks.enumerate() {
        if let Some(e) = expand {
            sites.push((format!("blocks.{i}.expand"), e));
        }
        sites.push((format!("blocks.{i}.depthwise"), depthwise));
        sites.push((format!("blocks.{i}.project"), project));
    }
}

/// What a phase trains beside the head (`head`): with `unfreeze`, the last N of `blocks` (from
/// the input to the output) or all of them. `None` means every parameter (the caller need not
/// restrict gradients); N larger than the blocks is an error naming `what` ("the encoder").
pub(crate) fn unfrozen(
    head: &ParamGroup,
    blocks: &[ParamGroup],
    unfreeze: Option<Unfreeze>,
    what: &str,
) -> Result<Option<ParamGroup>> {
    let n = match unfreeze {
        Some(Unfreeze::All) => return Ok(None),
        None => 0,
        Some(Unfreeze::Last(n)) if n > blocks.len() => {
            return Err(Error::Recipe {
                field: "finetune.unfreeze".into(),
                message: format!("last {n} layers asked, {what} has {}", blocks.len()),
            });
        }
        Some(Unfreeze::Last(n)) => n,
    };
    Ok(Some(
        blocks[blocks.len() - n..]
            .iter()
            .fold(head.clone(), |group, block| group.fuse(block)),
    ))
}

/// ReLU6, `min(max(x, 0), 6)`, as two one-sided clamps. burn's `relu6` is one two-sided
/// `clamp`, which burn-flex (the CPU and wasm backend) runs as a scalar loop with a bounds
/// check per element; the one-sided clamps vectorise. In the wasm build the two-sided clamp
/// was 48% of MobileNetV2's feature extraction time. On WebGPU the two fuse into one kernel.
pub(crate) fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp_min(0.0).clamp_max(6.0)
}

/// Suffixes a checkpoint may hold that have no place in the module.
const IGNORED: &[&str] = &["num_batches_tracked"];

/// Float tensors of a module, flattened, in visiting order.
struct Gather(Vec<Tensor<1>>);

impl burn::module::ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.0.push(param.val().flatten::<1>(0, D - 1));
    }
}

/// Puts read-back values into a module's float tensors, in the same visiting order.
struct Scatter {
    values: std::vec::IntoIter<burn::tensor::TensorData>,
    device: Device,
}

impl burn::module::ModuleMapper for Scatter {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (id, tensor, _) = param.consume();
        let data = self.values.next().expect("one value per visited tensor");
        let shape = tensor.shape();
        let value = Tensor::<1>::from_data(data, &self.device).reshape(shape);
        burn::module::Param::initialized(id, value)
    }
}

impl ImageModel {
    /// A copy on the CPU device with every tensor read back with awaited reads: the browser
    /// cannot read GPU memory synchronously, which writing a file needs.
    pub async fn to_host(&self) -> Result<Self> {
        read_back(self).await
    }
}

/// A copy of `module` (validation state) on the CPU device, every float tensor read back with
/// an awaited read.
pub(crate) async fn read_back<M: Module>(module: &M) -> Result<M> {
    let mut gather = Gather(Vec::new());
    module.visit(&mut gather);
    let mut values = Vec::with_capacity(gather.0.len());
    for tensor in gather.0 {
        values.push(
            tensor
                .into_data_async()
                .await
                .map_err(crate::error::compute)?,
        );
    }
    let mut scatter = Scatter {
        values: values.into_iter(),
        device: Device::flex(),
    };
    Ok(module.valid().map(&mut scatter))
}
