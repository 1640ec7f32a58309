//! Inference copies of the image backbones with every BatchNorm folded into the convolution
//! before it. A BatchNorm in inference mode is the per-channel affine map
//! `y = (x - mean) * gamma / sqrt(var + eps) + beta`, so `bn(conv(x))` equals a convolution with
//! its weights scaled per output channel and a bias: one pass over each activation instead of
//! the convolution plus the four element-wise passes BatchNorm's formula costs on the CPU.
//!
//! The copies are for the frozen backbone only (phase 1's feature cache, evaluation,
//! prediction): they have no BatchNorm to train and are never saved.

use burn::module::{Param, ParamId};
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

/// `conv` followed by `bn` (running statistics) as one convolution with a bias.
pub(crate) fn fold(conv: &Conv2d, bn: &BatchNorm) -> Conv2d {
    let scale = bn.gamma.val() / bn.running_var.value().add_scalar(bn.epsilon).sqrt();
    let channels = scale.dims()[0];
    let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
    let bias = match &conv.bias {
        Some(b) => shift + b.val() * scale.clone(),
        None => shift,
    };
    let weight = conv.weight.val() * scale.reshape([channels, 1, 1, 1]);
    Conv2d {
        weight: frozen(weight),
        bias: Some(frozen(bias)),
        ..conv.clone()
    }
}

fn frozen<const D: usize>(tensor: Tensor<D>) -> Param<Tensor<D>> {
    Param::initialized(ParamId::new(), tensor.detach()).set_require_grad(false)
}

#[cfg(test)]
mod tests {
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    use burn::tensor::Distribution;

    use super::*;

    /// A BatchNorm with non-trivial statistics folds into a grouped, biased convolution
    /// without changing its output.
    #[test]
    fn folded_conv_equals_conv_then_batchnorm() {
        let device = Device::flex();
        device.seed(7);
        let conv = Conv2dConfig::new([4, 6], [3, 3])
            .with_groups(2)
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let mut bn = BatchNormConfig::new(6).with_epsilon(1e-3).init(&device);
        let stat =
            |lo: f64, hi: f64| Tensor::<1>::random([6], Distribution::Uniform(lo, hi), &device);
        bn.gamma = Param::from_tensor(stat(0.5, 2.0));
        bn.beta = Param::from_tensor(stat(-1.0, 1.0));
        bn.running_mean = burn::module::RunningState::new(stat(-0.5, 0.5));
        bn.running_var = burn::module::RunningState::new(stat(0.1, 3.0));
        let bn = bn.no_grad().valid();
        let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
        let expected = bn.forward(conv.forward(x.clone()));
        let got = fold(&conv, &bn).forward(x);
        let err = (got - expected.clone()).abs().max().into_scalar::<f32>();
        let scale = expected.abs().max().into_scalar::<f32>();
        assert!(
            err <= 1e-5 * scale,
            "max error {err} (outputs up to {scale})"
        );
    }
}
