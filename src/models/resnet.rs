//! ResNet-18/34/50 (He et al. 2015) as torchvision builds them, loading torchvision checkpoints
//! by their own key names (see [`ResNet::weight_map`]).
//!
//! torchvision's layout: `conv1` 7x7/2 + `bn1` + ReLU, max pool 3x3/2 (padding 1), four stages
//! `layer1..4` of residual blocks (`layerL.B.conv1/bn1/conv2/bn2`, plus `conv3/bn3` for
//! bottlenecks, plus `downsample.0` (1x1 conv) / `downsample.1` (BN) on the first block of a
//! stage that changes the shape), global average pool, `fc`. ResNet-50 is "v1.5": the stride
//! sits on the bottleneck's 3x3 conv. BatchNorm epsilon 1e-5.

use std::collections::BTreeMap;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

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

fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = (kernel - 1) / 2;
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

fn bn(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels)
        .with_epsilon(1e-5)
        .init(device)
}

/// The 1x1 projection on a block's skip path (`downsample.0` conv, `downsample.1` BN).
#[derive(Module, Debug)]
pub struct Downsample {
    /// `downsample.0`.
    pub conv: Conv2d,
    /// `downsample.1`.
    pub bn: BatchNorm,
}

/// A residual block: torchvision's `BasicBlock` (two 3x3 convs; `conv3`/`bn3` absent) or
/// `Bottleneck` (1x1 reduce, 3x3 with the stride, 1x1 expand by 4). Field names are torchvision's.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// First conv (3x3 with the stride for basic blocks, 1x1 for bottlenecks).
    pub conv1: Conv2d,
    /// Its BN.
    pub bn1: BatchNorm,
    /// Second conv (3x3; carries the stride in bottlenecks).
    pub conv2: Conv2d,
    /// Its BN.
    pub bn2: BatchNorm,
    /// Bottleneck's 1x1 expansion.
    pub conv3: Option<Conv2d>,
    /// Its BN.
    pub bn3: Option<BatchNorm>,
    /// Skip-path projection when the shape changes.
    pub downsample: Option<Downsample>,
    /// Every BN is folded into its conv (an inference copy, see [`super::fold`]).
    folded: bool,
}

/// `bn` applied to `x`, unless it is already folded into the conv that made `x`.
fn norm(bn: &BatchNorm, folded: bool, x: Tensor<4>) -> Tensor<4> {
    if folded { x } else { bn.forward(x) }
}

impl ResidualBlock {
    fn basic(c_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(c_in, width, 3, stride, device),
            bn1: bn(width, device),
            conv2: conv(width, width, 3, 1, device),
            bn2: bn(width, device),
            conv3: None,
            bn3: None,
            downsample: (stride != 1 || c_in != width).then(|| Downsample {
                conv: conv(c_in, width, 1, stride, device),
                bn: bn(width, device),
            }),
            folded: false,
        }
    }

    fn bottleneck(c_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        let c_out = width * BOTTLENECK_EXPANSION;
        Self {
            conv1: conv(c_in, width, 1, 1, device),
            bn1: bn(width, device),
            conv2: conv(width, width, 3, stride, device),
            bn2: bn(width, device),
            conv3: Some(conv(width, c_out, 1, 1, device)),
            bn3: Some(bn(c_out, device)),
            downsample: (stride != 1 || c_in != c_out).then(|| Downsample {
                conv: conv(c_in, c_out, 1, stride, device),
                bn: bn(c_out, device),
            }),
            folded: false,
        }
    }

    fn folded(&self) -> Self {
        use super::fold::fold;
        if self.folded {
            return self.clone();
        }
        Self {
            conv1: fold(&self.conv1, &self.bn1),
            conv2: fold(&self.conv2, &self.bn2),
            conv3: match (&self.conv3, &self.bn3) {
                (Some(conv3), Some(bn3)) => Some(fold(conv3, bn3)),
                _ => self.conv3.clone(),
            },
            downsample: self.downsample.as_ref().map(|down| Downsample {
                conv: fold(&down.conv, &down.bn),
                bn: down.bn.clone(),
            }),
            folded: true,
            ..self.clone()
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let f = self.folded;
        let mut y = relu(norm(&self.bn1, f, self.conv1.forward(x.clone())));
        y = norm(&self.bn2, f, self.conv2.forward(y));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            y = norm(bn3, f, conv3.forward(relu(y)));
        }
        let skip = match &self.downsample {
            Some(down) => norm(&down.bn, f, down.conv.forward(x)),
            None => x,
        };
        relu(y + skip)
    }
}

/// ResNet-18, -34 or -50 with a classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem conv 7x7/2.
    pub conv1: Conv2d,
    /// Stem BN.
    pub bn1: BatchNorm,
    /// All residual blocks of `layer1..4`, in order.
    pub blocks: Vec<ResidualBlock>,
    /// `fc`.
    pub classifier: Linear,
    depth: usize,
    /// `bn1` is folded into `conv1` (an inference copy, see [`super::fold`]).
    folded: bool,
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
            conv1: conv(3, 64, 7, 2, device),
            bn1: bn(64, device),
            blocks,
            classifier: LinearConfig::new(c_in, classes).init(device),
            depth,
            folded: false,
        })
    }

    /// An inference copy with every BatchNorm folded into its convolution (see [`super::fold`]).
    pub fn folded(&self) -> Self {
        if self.folded {
            return self.clone();
        }
        Self {
            conv1: super::fold::fold(&self.conv1, &self.bn1),
            blocks: self.blocks.iter().map(ResidualBlock::folded).collect(),
            folded: true,
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
        let x = relu(norm(&self.bn1, self.folded, self.conv1.forward(images)));
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
            ("conv1.".into(), "conv1.".into()),
            ("bn1.".into(), "bn1.".into()),
            ("fc.".into(), "classifier.".into()),
        ];
        let mut index = 0;
        for (stage, &count) in counts.iter().enumerate() {
            for b in 0..count {
                let from = format!("layer{}.{b}.", stage + 1);
                let to = format!("blocks.{index}.");
                if self.blocks[index].downsample.is_some() {
                    map.push((
                        format!("{from}downsample.0."),
                        format!("{to}downsample.conv."),
                    ));
                    map.push((
                        format!("{from}downsample.1."),
                        format!("{to}downsample.bn."),
                    ));
                }
                map.push((from, to));
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
