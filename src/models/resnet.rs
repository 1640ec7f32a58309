//! ResNet-18/34/50 (He et al. 2015) as torchvision builds them, loading torchvision checkpoints
//! by their own key names (see [`ResNet::weight_map`]).
//!
//! torchvision's layout: `conv1` 7x7/2 + `bn1` + ReLU, max pool 3x3/2 (padding 1), four stages
//! `layer1..4` of residual blocks (`layerL.B.conv1/bn1/conv2/bn2`, plus `conv3/bn3` for
//! bottlenecks, plus `downsample.0` (1x1 conv) / `downsample.1` (BN) on the first block of a
//! stage that changes the shape), global average pool, `fc`. ResNet-50 is "v1.5": the stride
//! sits on the bottleneck's 3x3 conv. BatchNorm epsilon 1e-5.

use std::collections::BTreeMap;

use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::layers::{ConvBn, ConvBnSpec};
use crate::{Error, Result};

/// The depths this module builds.
pub const DEPTHS: [usize; 3] = [18, 34, 50];
const STAGE_WIDTHS: [usize; 4] = [64, 128, 256, 512];
const BOTTLENECK_EXPANSION: usize = 4;

/// Blocks per stage and whether they are bottlenecks, for a supported depth.
fn layout(depth: usize) -> Option<([usize; 4], bool)> {
    match depth {
        18 => Some(([2, 2, 2, 2], false)),
        34 => Some(([3, 4, 6, 3], false)),
        50 => Some(([3, 4, 6, 3], true)),
        _ => None,
    }
}

fn conv_bn(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> ConvBn {
    ConvBnSpec::new([c_in, c_out], kernel, stride).init(device)
}

/// A residual block: torchvision's `BasicBlock` (two 3x3 convs; `c3` absent) or `Bottleneck`
/// (1x1 reduce, 3x3 with the stride, 1x1 expand by 4). `cN` holds torchvision's `convN`/`bnN`.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// First conv + BN (3x3 with the stride for basic blocks, 1x1 for bottlenecks).
    pub c1: ConvBn,
    /// Second conv + BN (3x3; carries the stride in bottlenecks).
    pub c2: ConvBn,
    /// Bottleneck's 1x1 expansion + BN.
    pub c3: Option<ConvBn>,
    /// Skip-path projection when the shape changes (`downsample.0` conv, `downsample.1` BN).
    pub downsample: Option<ConvBn>,
}

impl ResidualBlock {
    fn basic(c_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        Self {
            c1: conv_bn(c_in, width, 3, stride, device),
            c2: conv_bn(width, width, 3, 1, device),
            c3: None,
            downsample: (stride != 1 || c_in != width)
                .then(|| conv_bn(c_in, width, 1, stride, device)),
        }
    }

    fn bottleneck(c_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        let c_out = width * BOTTLENECK_EXPANSION;
        Self {
            c1: conv_bn(c_in, width, 1, 1, device),
            c2: conv_bn(width, width, 3, stride, device),
            c3: Some(conv_bn(width, c_out, 1, 1, device)),
            downsample: (stride != 1 || c_in != c_out)
                .then(|| conv_bn(c_in, c_out, 1, stride, device)),
        }
    }

    fn folded(&self) -> Self {
        Self {
            c1: self.c1.folded(),
            c2: self.c2.folded(),
            c3: self.c3.as_ref().map(ConvBn::folded),
            downsample: self.downsample.as_ref().map(ConvBn::folded),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = self.c2.forward(relu(self.c1.forward(x.clone())));
        if let Some(c3) = &self.c3 {
            y = c3.forward(relu(y));
        }
        let skip = match &self.downsample {
            Some(down) => down.forward(x),
            None => x,
        };
        relu(y + skip)
    }
}

/// ResNet-18, -34 or -50 with a classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem conv 7x7/2 + BN (torchvision's `conv1`, `bn1`).
    pub stem: ConvBn,
    /// All residual blocks of `layer1..4`, in order.
    pub blocks: Vec<ResidualBlock>,
    /// `fc`.
    pub classifier: Linear,
    depth: usize,
}

impl ResNet {
    /// Randomly initialised ResNet of `depth` (18, 34 or 50) with `classes` outputs.
    pub fn new(depth: usize, classes: usize, device: &Device) -> Result<Self> {
        let (counts, bottleneck) = layout(depth).ok_or_else(|| Error::Weights {
            file: format!("resnet{depth}"),
            message: format!("unsupported ResNet depth {depth}: supported depths are 18, 34, 50"),
        })?;
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (stage, (&count, &width)) in counts.iter().zip(&STAGE_WIDTHS).enumerate() {
            for i in 0..count {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let block = if bottleneck {
                    ResidualBlock::bottleneck(c_in, width, stride, device)
                } else {
                    ResidualBlock::basic(c_in, width, stride, device)
                };
                c_in = if bottleneck {
                    width * BOTTLENECK_EXPANSION
                } else {
                    width
                };
                blocks.push(block);
            }
        }
        Ok(Self {
            stem: conv_bn(3, 64, 7, 2, device),
            blocks,
            classifier: LinearConfig::new(c_in, classes).init(device),
            depth,
        })
    }

    /// An inference copy with every BatchNorm folded into its convolution (see [`super::fold`]).
    pub fn folded(&self) -> Self {
        Self {
            stem: self.stem.folded(),
            blocks: self.blocks.iter().map(ResidualBlock::folded).collect(),
            ..self.clone()
        }
    }

    /// The depth this network was built with (18, 34 or 50).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Width of the pooled features: 512 (18/34) or 2048 (50).
    pub fn feature_dim(&self) -> usize {
        match layout(self.depth) {
            Some((_, true)) => STAGE_WIDTHS[3] * BOTTLENECK_EXPANSION,
            _ => STAGE_WIDTHS[3],
        }
    }

    /// Global-average-pooled features `[batch, feature_dim]` of ImageNet-normalised images
    /// `[batch, 3, H, W]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.stem.forward(images));
        let mut x = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init()
            .forward(x);
        for block in &self.blocks {
            x = block.forward(x);
        }
        x.mean_dims(&[2, 3]).flatten(1, 3)
    }

    /// Class logits `[batch, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.features(images))
    }

    /// torchvision key prefix -> this module's path prefix (see `crate::weights::load_into`).
    /// The loader applies the rules in order, each to the result of the one before, so each
    /// block's `downsample.N.` rules come before its plain `layerL.B.` rule.
    pub fn weight_map(&self) -> Vec<(String, String)> {
        let (counts, _) = layout(self.depth).expect("built with a supported depth");
        let mut map: Vec<(String, String)> = vec![
            ("conv1.".into(), "stem.conv.".into()),
            ("bn1.".into(), "stem.bn.".into()),
            ("fc.".into(), "classifier.".into()),
        ];
        let mut index = 0;
        for (stage, &count) in counts.iter().enumerate() {
            for b in 0..count {
                let from = format!("layer{}.{b}.", stage + 1);
                let to = format!("blocks.{index}.");
                for (k, c) in [
                    ("conv1", "c1.conv"),
                    ("bn1", "c1.bn"),
                    ("conv2", "c2.conv"),
                    ("bn2", "c2.bn"),
                    ("conv3", "c3.conv"),
                    ("bn3", "c3.bn"),
                    ("downsample.0", "downsample.conv"),
                    ("downsample.1", "downsample.bn"),
                ] {
                    map.push((format!("{from}{k}."), format!("{to}{c}.")));
                }
                index += 1;
            }
        }
        map
    }

    /// The depth (18, 34 or 50) of a torchvision ResNet checkpoint, told from its key names:
    /// blocks per stage, and `conv3` present for bottlenecks. `None` for anything else.
    pub fn depth_from_keys(keys: &[String]) -> Option<usize> {
        let mut blocks: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
        let mut bottleneck = false;
        for key in keys {
            let Some(rest) = key.strip_prefix("layer") else {
                continue;
            };
            let mut parts = rest.split('.');
            let (Some(stage), Some(block), Some(part)) = (
                parts.next().and_then(|s| s.parse::<usize>().ok()),
                parts.next().and_then(|s| s.parse::<usize>().ok()),
                parts.next(),
            ) else {
                return None;
            };
            blocks.entry(stage).or_default().insert(block);
            bottleneck |= part == "conv3";
        }
        if blocks.keys().copied().collect::<Vec<_>>() != [1, 2, 3, 4] {
            return None;
        }
        let mut counts = [0; 4];
        for (stage, set) in &blocks {
            // Blocks must be numbered 0..n without gaps.
            if set.iter().copied().ne(0..set.len()) {
                return None;
            }
            counts[stage - 1] = set.len();
        }
        DEPTHS
            .into_iter()
            .find(|&depth| layout(depth) == Some((counts, bottleneck)))
    }
}
