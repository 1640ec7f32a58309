//! The layer the three CNNs share: a convolution, its BatchNorm, optionally ReLU6, and the
//! inference copy with the BatchNorm folded into the convolution (see [`super::fold`]).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::PadMode;

use super::lora::{Adapter, LoraSite};
use super::relu6;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

/// Conv (no bias) + BatchNorm (+ ReLU6): torchvision's `Conv2dNormActivation`, ResNet's
/// conv/bn pairs, EfficientNet-Lite's TF-"SAME"-padded convolutions.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
    /// A low-rank adapter beside the convolution (1x1 ungrouped ones only), in a LoRA phase.
    pub lora: Option<Adapter>,
    kernel: usize,
    stride: usize,
    /// TF "SAME" padding, computed from each input's size (else symmetric `(kernel - 1) / 2`).
    same: bool,
    /// ReLU6 after the BatchNorm.
    act: bool,
    /// `bn` is folded into `conv` (an inference copy).
    folded: bool,
}

/// How to build a [`ConvBn`]: channels, kernel and stride; groups, activation, padding and
/// the BatchNorm's epsilon default to 1, none, symmetric and 1e-5.
#[derive(Debug, Clone, Copy)]
pub struct ConvBnSpec {
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    groups: usize,
    act: bool,
    same: bool,
    epsilon: f64,
}

impl ConvBnSpec {
    /// `channels` `[in, out]`, a square `kernel`, `stride`.
    pub fn new(channels: [usize; 2], kernel: usize, stride: usize) -> Self {
        Self {
            channels,
            kernel,
            stride,
            groups: 1,
            act: false,
            same: false,
            epsilon: 1e-5,
        }
    }

    /// Grouped (depthwise with `groups` = channels).
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// ReLU6 after the BatchNorm when `on`.
    pub fn relu6(self, on: bool) -> Self {
        Self { act: on, ..self }
    }

    /// TF "SAME" padding and the BatchNorm's `epsilon` (EfficientNet-Lite).
    pub fn same(self, epsilon: f64) -> Self {
        Self {
            same: true,
            epsilon,
            ..self
        }
    }

    /// The layer, randomly initialised.
    pub fn init(self, device: &Device) -> ConvBn {
        let pad = if self.same { 0 } else { (self.kernel - 1) / 2 };
        ConvBn {
            conv: Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
                .with_stride([self.stride, self.stride])
                .with_groups(self.groups)
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(self.channels[1])
                .with_epsilon(self.epsilon)
                .init(device),
            lora: None,
            kernel: self.kernel,
            stride: self.stride,
            same: self.same,
            act: self.act,
            folded: false,
        }
    }
}

/// TF "SAME" padding along one axis of size `input`: (before, after).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

impl ConvBn {
    /// The inference copy: the BatchNorm folded into the convolution (and an adapter merged
    /// into it first).
    pub fn folded(&self) -> Self {
        if self.folded {
            return self.clone();
        }
        let merged = self.clone().merge();
        Self {
            conv: super::fold::fold(&merged.conv, &merged.bn),
            folded: true,
            ..merged
        }
    }

    /// The layer with its adapter added into the convolution's weight, and no adapter.
    pub fn merge(mut self) -> Self {
        self.merge_adapter();
        self
    }

    /// The adapter's output for the convolution's input `x`: `B (A x)` as two 1x1
    /// convolutions, `A` at the layer's stride (PEFT's `lora_A` takes the base layer's).
    fn adapter_forward(&self, adapter: &Adapter, x: Tensor<4>) -> Tensor<4> {
        let [r, c] = adapter.a.dims();
        let [out, _] = adapter.b.dims();
        let x = adapter.dropout.forward(x);
        let s = self.stride;
        let down = conv2d(
            x,
            adapter.a.val().reshape([r, c, 1, 1]),
            None,
            ConvOptions::new([s, s], [0, 0], [1, 1], 1),
        );
        conv2d(
            down,
            adapter.b.val().reshape([out, r, 1, 1]),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
        .mul_scalar(adapter.scale)
    }

    /// conv, BatchNorm (unless folded), ReLU6 (when asked).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.same {
            let [_, _, h, w] = x.dims();
            let (top, bottom) = same_padding(h, self.kernel, self.stride);
            let (left, right) = same_padding(w, self.kernel, self.stride);
            if top + bottom + left + right > 0 {
                x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
            } else {
                x
            }
        } else {
            x
        };
        let y = match &self.lora {
            Some(adapter) => self.conv.forward(x.clone()) + self.adapter_forward(adapter, x),
            None => self.conv.forward(x),
        };
        let y = if self.folded { y } else { self.bn.forward(y) };
        if self.act { relu6(y) } else { y }
    }
}

impl LoraSite for ConvBn {
    /// `[in, out]` channels.
    fn adapter_dims(&self) -> [usize; 2] {
        let [out, inp, _, _] = self.conv.weight.dims();
        [inp, out]
    }
    fn adaptable(&self) -> bool {
        let [_, _, kh, kw] = self.conv.weight.dims();
        kh == 1 && kw == 1 && self.conv.groups == 1 && !self.folded
    }
    fn adapter(&self) -> Option<&Adapter> {
        self.lora.as_ref()
    }
    fn set_adapter(&mut self, adapter: Option<Adapter>) {
        self.lora = adapter;
    }
    fn site_device(&self) -> Device {
        self.conv.weight.device()
    }
    fn is_conv(&self) -> bool {
        true
    }
    fn merge_adapter(&mut self) {
        if let Some(adapter) = self.lora.take() {
            let weight = self.conv.weight.val().detach();
            let [out, inp, kh, kw] = weight.dims();
            let merged = weight + adapter.delta().reshape([out, inp, kh, kw]);
            self.conv.weight = burn::module::Param::initialized(self.conv.weight.id, merged);
        }
    }
}
