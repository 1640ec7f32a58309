//! The new classification head trained on top of a frozen backbone's pooled features.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of the head: pooled feature width in, one logit per class out.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Width of the pooled feature vector.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
}

impl HeadConfig {
    /// A head initialised from `seed` with PyTorch's `nn.Linear` rule, U(-k, k), k = 1/sqrt(in),
    /// drawn on the host: the same numbers on every backend, so the CLI and the browser start
    /// from the same head and can be compared run for run.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Head {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = 1.0 / (self.features as f32).sqrt();
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k)).collect() };
        let weight = draw(self.features * self.classes);
        let bias = draw(self.classes);
        Head {
            linear: Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(weight, [self.features, self.classes]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias, [self.classes]),
                    device,
                ))),
            },
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
