//! The new classification head trained on top of a frozen backbone's pooled features: one
//! Linear layer, or (text models, when the recipe asks) a small MLP with dropout.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of the head: pooled feature width in, one logit per class out.
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// Width of the pooled feature vector.
    pub features: usize,
    /// Number of classes.
    pub classes: usize,
    /// Width of an MLP's hidden layer (`None`: a single Linear layer).
    #[config(default = "None")]
    pub hidden: Option<usize>,
    /// Dropout after the MLP's hidden layer (while training).
    #[config(default = 0.0)]
    pub dropout: f64,
}

/// A Linear layer `[in, out]` drawn from `rng` with PyTorch's `nn.Linear` rule, U(-k, k),
/// k = 1/sqrt(in).
fn seeded_linear(rng: &mut ChaCha8Rng, d_in: usize, d_out: usize, device: &Device) -> Linear {
    let k = 1.0 / (d_in as f32).sqrt();
    let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k)).collect() };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [d_in, d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [d_out]),
            device,
        ))),
    }
}

impl HeadConfig {
    /// A head initialised from `seed`, drawn on the host: the same numbers on every backend,
    /// so the CLI and the browser start from the same head and can be compared run for run.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Head {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match self.hidden {
            None => Head::from_linear(seeded_linear(&mut rng, self.features, self.classes, device)),
            Some(h) => Head {
                hidden: Some(seeded_linear(&mut rng, self.features, h, device)),
                dropout: DropoutConfig::new(self.dropout).init(),
                linear: seeded_linear(&mut rng, h, self.classes, device),
            },
        }
    }
}

/// A linear classifier over pooled features, or a one-hidden-layer MLP (ReLU, dropout).
#[derive(Module, Debug)]
pub struct Head {
    /// The MLP's hidden layer, if any.
    pub hidden: Option<Linear>,
    /// Dropout after the hidden layer.
    pub dropout: Dropout,
    /// The output layer; named `linear` to read as torchvision's `classifier.1` / HF's
    /// `classifier` after export.
    pub linear: Linear,
}

impl Head {
    /// A single-layer head.
    pub fn from_linear(linear: Linear) -> Self {
        Self {
            hidden: None,
            dropout: DropoutConfig::new(0.0).init(),
            linear,
        }
    }

    /// Logits `[batch, classes]` from features `[batch, features]`.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        match &self.hidden {
            None => self.linear.forward(features),
            Some(hidden) => self
                .linear
                .forward(self.dropout.forward(relu(hidden.forward(features)))),
        }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.linear.weight.dims()[1]
    }
}
