//! MobileNetV2 (Sandler et al. 2018) as torchvision builds it, loading torchvision's
//! `IMAGENET1K_V1` checkpoint by its own key names (see [`weight_map`]).
//!
//! torchvision's layout: `features.0` stem (conv 3x3/2 + BN + ReLU6), `features.1..=17`
//! inverted residual blocks, `features.18` 1x1 conv to 1280 + BN + ReLU6, global average pool,
//! `classifier.1` Linear(1280, 1000) behind a dropout.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::layers::{ConvBn, ConvBnSpec};

/// (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];
const STEM_CHANNELS: usize = 32;
/// Width of the pooled feature vector the head sees.
pub const FEATURES: usize = 1280;

/// One inverted residual block: optional 1x1 expansion, 3x3 depthwise, 1x1 linear projection.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    /// 1x1 expansion (absent when t = 1).
    pub expand: Option<ConvBn>,
    /// 3x3 depthwise conv.
    pub depthwise: ConvBn,
    /// 1x1 projection without activation.
    pub project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn new(c_in: usize, c_out: usize, stride: usize, t: usize, device: &Device) -> Self {
        let hidden = c_in * t;
        Self {
            expand: (t != 1).then(|| {
                ConvBnSpec::new([c_in, hidden], 1, 1)
                    .relu6(true)
                    .init(device)
            }),
            depthwise: ConvBnSpec::new([hidden, hidden], 3, stride)
                .groups(hidden)
                .relu6(true)
                .init(device),
            project: ConvBnSpec::new([hidden, c_out], 1, 1).init(device),
            residual: stride == 1 && c_in == c_out,
        }
    }

    fn folded(&self) -> Self {
        Self {
            expand: self.expand.as_ref().map(ConvBn::folded),
            depthwise: self.depthwise.folded(),
            project: self.project.folded(),
            residual: self.residual,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        if let Some(expand) = &self.expand {
            y = expand.forward(y);
        }
        let y = self.project.forward(self.depthwise.forward(y));
        if self.residual { x + y } else { y }
    }
}

/// The backbone plus an optional classifier.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// `features.0`.
    pub stem: ConvBn,
    /// `features.1..=17`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.18`.
    pub last: ConvBn,
    /// `classifier.1`.
    pub classifier: Linear,
}

impl MobileNetV2 {
    /// Randomly initialised network with `classes` outputs (1000 for ImageNet weights).
    pub fn new(classes: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut c_in = STEM_CHANNELS;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                blocks.push(InvertedResidual::new(
                    c_in,
                    c,
                    if i == 0 { s } else { 1 },
                    t,
                    device,
                ));
                c_in = c;
            }
        }
        Self {
            stem: ConvBnSpec::new([3, STEM_CHANNELS], 3, 2)
                .relu6(true)
                .init(device),
            blocks,
            last: ConvBnSpec::new([c_in, FEATURES], 1, 1)
                .relu6(true)
                .init(device),
            classifier: LinearConfig::new(FEATURES, classes).init(device),
        }
    }

    /// An inference copy with every BatchNorm folded into its convolution (see [`super::fold`]).
    pub fn folded(&self) -> Self {
        Self {
            stem: self.stem.folded(),
            blocks: self.blocks.iter().map(InvertedResidual::folded).collect(),
            last: self.last.folded(),
            classifier: self.classifier.clone(),
        }
    }

    /// Global-average-pooled features `[batch, 1280]` of normalised images `[batch, 3, H, W]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.last.forward(x).mean_dims(&[2, 3]).flatten(1, 3)
    }

    /// Class logits `[batch, classes]`. Dropout (p=0.2 in torchvision) is left to the trainer.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }
}

/// torchvision key prefix -> this module's path prefix, one pair per submodule; the loader
/// turns these into anchored rename rules. Keeping the table explicit means a reader can hold a
/// checkpoint key and find its field in one look.
pub fn weight_map() -> Vec<(String, String)> {
    let mut map = vec![
        ("features.0.0.".into(), "stem.conv.".into()),
        ("features.0.1.".into(), "stem.bn.".into()),
        ("features.18.0.".into(), "last.conv.".into()),
        ("features.18.1.".into(), "last.bn.".into()),
        ("classifier.1.".into(), "classifier.".into()),
    ];
    let mut index = 0;
    for (t, _, n, _) in SETTINGS {
        for _ in 0..n {
            let f = format!("features.{}.conv", index + 1);
            let b = format!("blocks.{index}");
            let parts: &[(&str, &str)] = if t == 1 {
                &[
                    ("0.0", "depthwise.conv"),
                    ("0.1", "depthwise.bn"),
                    ("1", "project.conv"),
                    ("2", "project.bn"),
                ]
            } else {
                &[
                    ("0.0", "expand.conv"),
                    ("0.1", "expand.bn"),
                    ("1.0", "depthwise.conv"),
                    ("1.1", "depthwise.bn"),
                    ("2", "project.conv"),
                    ("3", "project.bn"),
                ]
            };
            for (from, to) in parts {
                map.push((format!("{f}.{from}."), format!("{b}.{to}.")));
            }
            index += 1;
        }
    }
    map
}
