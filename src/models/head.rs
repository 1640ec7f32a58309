//! The new classification head trained on top of a frozen backbone's pooled features.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// Shape of the head: pooled feature width in, one logit per class out.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Width of the pooled feature vector.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
}

impl HeadConfig {
    /// A freshly initialised head on `device`.
    pub fn init(&self, device: &Device) -> Head {
        Head {
            linear: LinearConfig::new(self.features, self.classes).init(device),
        }
    }
}

/// A linear classifier over pooled features.
#[derive(Module, Debug)]
pub struct Head {
    /// Named `linear` to read as torchvision's `classifier.1` / HF's `classifier` after export.
    pub linear: Linear,
}

impl Head {
    /// Logits `[batch, classes]` from features `[batch, features]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        self.linear.forward(features)
    }
}
