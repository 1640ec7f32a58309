//! Small networks over numeric recordings (sensors, joints, robot state), described by a
//! config.json rather than written as a file each: Conv1D, GRU/LSTM, Linear, pooling,
//! activations and normalisation in any order, weights loaded by PyTorch's names (a user's own
//! `nn.Conv1d` / `nn.GRU` / `nn.Linear` model loads as it was saved).
//!
//! ```json
//! {"architecture": "series",
//!  "input": {"channels": ["acc_x", "acc_y", "acc_z"], "rate_hz": 20, "window": 90,
//!            "mean": [..], "std": [..]},
//!  "layers": [{"type": "conv1d", "name": "conv1", "in_channels": 3, "out_channels": 60,
//!              "kernel": 60}, {"type": "relu"}, {"type": "flatten"}, ...],
//!  "output": {"kind": "classes", "labels": [..]}}
//! ```
//!
//! Tensors flow as `[batch, channels, time]` through the sequence layers (a recurrent layer or
//! a Linear on a sequence works on every step) and as `[batch, features]` after `flatten`, a
//! global pool or `last_step`. The last layer with weights is the head: a new one replaces it
//! when the data's classes or targets differ. An output that is still a sequence is a
//! prediction per step (RIANN's orientation at every sample).

use burn::module::{Param, ParamGroup};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{AvgPool1dConfig, MaxPool1dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear,
    PaddingConfig1d,
};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{gelu, leaky_relu, relu, sigmoid, tanh};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Unfreeze;
use super::lora::{self, Adaptable, LoraOptions, LoraSite};
use crate::weights::{WeightSource, inspect, load_into, save_safetensors};
use crate::{Error, Result};

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn eps() -> f64 {
    1e-5
}

/// One layer of a series network, as config.json spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// PyTorch `nn.Conv1d` (`{name}.weight` `[out, in, kernel]`, `{name}.bias`).
    Conv1d {
        name: String,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "one")]
        dilation: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    /// PyTorch `nn.Linear`; on a sequence, applied at every step.
    Linear {
        name: String,
        in_features: usize,
        out_features: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    /// PyTorch `nn.GRU(batch_first=True)` (`{name}.weight_ih_l{k}` ... gates r, z, n).
    Gru {
        name: String,
        input_size: usize,
        hidden_size: usize,
        #[serde(default = "one")]
        num_layers: usize,
    },
    /// PyTorch `nn.LSTM(batch_first=True)` (gates i, f, g, o).
    Lstm {
        name: String,
        input_size: usize,
        hidden_size: usize,
        #[serde(default = "one")]
        num_layers: usize,
    },
    /// PyTorch `nn.BatchNorm1d` over channels (sequence) or features.
    BatchNorm1d {
        name: String,
        num_features: usize,
        #[serde(default = "eps")]
        eps: f64,
    },
    /// PyTorch `nn.LayerNorm` over the channels of each step (or the features).
    LayerNorm {
        name: String,
        normalized_shape: usize,
        #[serde(default = "eps")]
        eps: f64,
    },
    /// Max over `kernel` steps every `stride` (default: `kernel`).
    MaxPool1d {
        kernel: usize,
        stride: Option<usize>,
    },
    /// Mean over `kernel` steps every `stride` (default: `kernel`).
    AvgPool1d {
        kernel: usize,
        stride: Option<usize>,
    },
    /// Mean over time: a sequence becomes a vector.
    GlobalAvgPool,
    /// Max over time.
    GlobalMaxPool,
    /// The last step of a sequence (a recurrent classifier's summary).
    LastStep,
    /// `[batch, channels, time]` to `[batch, channels * time]` (PyTorch's `flatten(1)`).
    Flatten,
    Relu,
    Tanh,
    Sigmoid,
    Gelu,
    LeakyRelu {
        negative_slope: f64,
    },
    Dropout {
        p: f64,
    },
    /// Divide by the Euclidean norm over channels (a unit quaternion out of four values).
    Normalize,
}

impl LayerSpec {
    /// The weight-name prefix of a layer with weights.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Conv1d { name, .. }
            | Self::Linear { name, .. }
            | Self::Gru { name, .. }
            | Self::Lstm { name, .. }
            | Self::BatchNorm1d { name, .. }
            | Self::LayerNorm { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Width this layer takes at its input, for layers that fix it.
    fn input_width(&self) -> Option<usize> {
        match self {
            Self::Conv1d { in_channels: n, .. }
            | Self::Linear { in_features: n, .. }
            | Self::Gru { input_size: n, .. }
            | Self::Lstm { input_size: n, .. }
            | Self::BatchNorm1d {
                num_features: n, ..
            }
            | Self::LayerNorm {
                normalized_shape: n,
                ..
            } => Some(*n),
            _ => None,
        }
    }

    /// Width this layer gives, for layers that set it.
    fn output_width(&self) -> Option<usize> {
        match self {
            Self::Conv1d {
                out_channels: n, ..
            }
            | Self::Linear {
                out_features: n, ..
            }
            | Self::Gru { hidden_size: n, .. }
            | Self::Lstm { hidden_size: n, .. } => Some(*n),
            _ => None,
        }
    }

    /// Projects its input (conv, linear, recurrent): where channels can be added or a head
    /// replaced.
    fn projects(&self) -> bool {
        matches!(
            self,
            Self::Conv1d { .. } | Self::Linear { .. } | Self::Gru { .. } | Self::Lstm { .. }
        )
    }
}

/// What the network reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInput {
    /// Channel names, in the order the first layer takes them. `dt` is the time between two
    /// samples (s), filled in from the rate.
    pub channels: Vec<String>,
    /// Sample rate the network was trained at (Hz); `None`: any (it reads `dt`).
    #[serde(default)]
    pub rate_hz: Option<f64>,
    /// Samples per window when the network needs a fixed length (a `flatten`).
    #[serde(default)]
    pub window: Option<usize>,
    /// Per-channel normalisation: the network reads `(x - mean) / std`.
    pub mean: Vec<f32>,
    /// See `mean`.
    pub std: Vec<f32>,
    /// Free text: the units and placement the channels were recorded in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
}

/// The loss of a regression output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionLoss {
    /// Mean squared error of the normalised outputs.
    Mse,
    /// Huber (delta 1) of the normalised outputs.
    Huber,
    /// For unit quaternions (w, x, y, z; body to earth): the angle between the predicted and
    /// the true direction of gravity in the body frame (inclination; heading is left out,
    /// as accelerometer and gyroscope cannot observe it).
    Attitude,
}

/// What the network gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeriesOutput {
    /// One logit per class (softmax; `activation: sigmoid` for models trained one-vs-rest).
    Classes {
        labels: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activation: Option<String>,
    },
    /// Values: the network gives `(y - mean) / std` of each.
    Values {
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mean: Vec<f32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        std: Vec<f32>,
        /// A value at every step (else one per window).
        #[serde(default)]
        per_step: bool,
        /// The loss to train with (default MSE).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        loss: Option<RegressionLoss>,
    },
}

impl SeriesOutput {
    /// Output width.
    pub fn width(&self) -> usize {
        match self {
            Self::Classes { labels, .. } => labels.len(),
            Self::Values { names, .. } => names.len(),
        }
    }

    /// `mean` and `std` of a values output, filled in (0 and 1) where the config has none.
    pub fn scaling(&self) -> (Vec<f32>, Vec<f32>) {
        match self {
            Self::Values {
                names, mean, std, ..
            } => (
                if mean.is_empty() {
                    vec![0.0; names.len()]
                } else {
                    mean.clone()
                },
                if std.is_empty() {
                    vec![1.0; names.len()]
                } else {
                    std.clone()
                },
            ),
            Self::Classes { labels, .. } => (vec![0.0; labels.len()], vec![1.0; labels.len()]),
        }
    }
}

/// A series network's config.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesConfig {
    /// Always `"series"`.
    pub architecture: String,
    /// A name for reports.
    #[serde(default)]
    pub name: Option<String>,
    /// What it reads.
    pub input: SeriesInput,
    /// The layers, first to last.
    pub layers: Vec<LayerSpec>,
    /// What it gives.
    pub output: SeriesOutput,
    /// Where the weights came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl SeriesConfig {
    /// Parse and check config.json (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let bad = |message: String| Error::Weights {
            file: file.into(),
            message,
        };
        let config: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        config.check().map_err(bad)?;
        Ok(config)
    }

    /// Widths agree from layer to layer, the normalisation fits the channels, the head fits
    /// the output.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.architecture != "series" {
            return Err(format!(
                "architecture \"{}\" is not \"series\"",
                self.architecture
            ));
        }
        let n = self.input.channels.len();
        if n == 0 || self.input.mean.len() != n || self.input.std.len() != n {
            return Err(format!(
                "input: {n} channels, {} means and {} stds: give one of each per channel",
                self.input.mean.len(),
                self.input.std.len()
            ));
        }
        if let Some(i) = self.input.std.iter().position(|s| s.is_nan() || *s <= 0.0) {
            return Err(format!(
                "input.std of {} is {}: it must be above 0",
                self.input.channels[i], self.input.std[i]
            ));
        }
        let mut width = n;
        let mut seq = true;
        let mut time = self.input.window;
        for (i, layer) in self.layers.iter().enumerate() {
            if let Some(w) = layer.input_width()
                && w != width
            {
                return Err(format!(
                    "layers[{i}] ({}) takes {w} values, the layer before gives {width}",
                    layer.name().unwrap_or("?")
                ));
            }
            match layer {
                LayerSpec::Conv1d {
                    kernel,
                    stride,
                    padding,
                    dilation,
                    ..
                } => {
                    if !seq {
                        return Err(format!("layers[{i}]: conv1d after the time axis is gone"));
                    }
                    time = time.map(|t| {
                        (t + 2 * padding).saturating_sub(dilation * (kernel - 1) + 1) / stride + 1
                    });
                }
                LayerSpec::MaxPool1d { kernel, stride }
                | LayerSpec::AvgPool1d { kernel, stride } => {
                    if !seq {
                        return Err(format!("layers[{i}]: pooling after the time axis is gone"));
                    }
                    time = time.map(|t| t.saturating_sub(*kernel) / stride.unwrap_or(*kernel) + 1);
                }
                LayerSpec::Gru { .. } | LayerSpec::Lstm { .. } if !seq => {
                    return Err(format!("layers[{i}]: a recurrent layer needs a sequence"));
                }
                LayerSpec::GlobalAvgPool | LayerSpec::GlobalMaxPool | LayerSpec::LastStep => {
                    seq = false;
                }
                LayerSpec::Flatten => {
                    let Some(t) = time else {
                        return Err(format!("layers[{i}]: flatten needs a fixed input.window"));
                    };
                    width *= t;
                    seq = false;
                }
                _ => {}
            }
            if let Some(w) = layer.output_width() {
                width = w;
            }
        }
        if width != self.output.width() {
            return Err(format!(
                "the last layer gives {width} values, the output has {}",
                self.output.width()
            ));
        }
        if !self.layers.iter().any(LayerSpec::projects) {
            return Err("no layer with weights (conv1d, linear, gru, lstm)".into());
        }
        if let SeriesOutput::Values { per_step, .. } = &self.output
            && *per_step != seq
        {
            return Err(format!(
                "output.per_step is {per_step} but the network gives {}",
                if seq {
                    "a sequence"
                } else {
                    "one vector per window"
                }
            ));
        }
        if matches!(self.output, SeriesOutput::Classes { .. }) && seq {
            return Err(
                "a classifier must end in one vector per window (flatten, a global pool or \
                 last_step)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Index of the head: the last layer with a projection.
    pub fn head_index(&self) -> usize {
        self.layers
            .iter()
            .rposition(LayerSpec::projects)
            .unwrap_or(0)
    }

    /// The output is a sequence (one prediction per step).
    pub fn per_step(&self) -> bool {
        matches!(self.output, SeriesOutput::Values { per_step: true, .. })
    }

    /// The name of every tensor the weights must hold, with its shape (PyTorch's names and
    /// layouts).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for layer in &self.layers {
            match layer {
                LayerSpec::Conv1d {
                    name,
                    in_channels,
                    out_channels,
                    kernel,
                    bias,
                    ..
                } => {
                    out.push((
                        format!("{name}.weight"),
                        vec![*out_channels, *in_channels, *kernel],
                    ));
                    if *bias {
                        out.push((format!("{name}.bias"), vec![*out_channels]));
                    }
                }
                LayerSpec::Linear {
                    name,
                    in_features,
                    out_features,
                    bias,
                } => {
                    out.push((format!("{name}.weight"), vec![*out_features, *in_features]));
                    if *bias {
                        out.push((format!("{name}.bias"), vec![*out_features]));
                    }
                }
                LayerSpec::Gru {
                    name,
                    input_size,
                    hidden_size,
                    num_layers,
                }
                | LayerSpec::Lstm {
                    name,
                    input_size,
                    hidden_size,
                    num_layers,
                } => {
                    let gates = if matches!(layer, LayerSpec::Gru { .. }) {
                        3
                    } else {
                        4
                    };
                    for k in 0..*num_layers {
                        let input = if k == 0 { *input_size } else { *hidden_size };
                        let rows = gates * hidden_size;
                        out.push((format!("{name}.weight_ih_l{k}"), vec![rows, input]));
                        out.push((format!("{name}.weight_hh_l{k}"), vec![rows, *hidden_size]));
                        out.push((format!("{name}.bias_ih_l{k}"), vec![rows]));
                        out.push((format!("{name}.bias_hh_l{k}"), vec![rows]));
                    }
                }
                LayerSpec::BatchNorm1d {
                    name, num_features, ..
                } => {
                    for t in ["weight", "bias", "running_mean", "running_var"] {
                        out.push((format!("{name}.{t}"), vec![*num_features]));
                    }
                }
                LayerSpec::LayerNorm {
                    name,
                    normalized_shape,
                    ..
                } => {
                    out.push((format!("{name}.weight"), vec![*normalized_shape]));
                    out.push((format!("{name}.bias"), vec![*normalized_shape]));
                }
                _ => {}
            }
        }
        out
    }
}

/// One recurrent layer (PyTorch's gate order: GRU r, z, n; LSTM i, f, g, o).
#[derive(Module, Debug)]
pub struct Recurrent {
    /// Input projection (`weight_ih`, `bias_ih`).
    pub ih: Linear,
    /// State projection (`weight_hh`, `bias_hh`).
    pub hh: Linear,
    /// Hidden width.
    pub hidden: usize,
    /// LSTM (else GRU).
    pub lstm: bool,
}

impl Recurrent {
    /// One step `[batch, input]` per time step to one `[batch, hidden]` per step, from a zero
    /// state. Steps stay separate tensors between stacked layers: slicing one `[batch, time,
    /// ..]` tensor per step would cost a full-size zero gradient per step in the backward pass
    /// (time squared).
    pub fn run(&self, steps: Vec<Tensor<2>>) -> Vec<Tensor<2>> {
        let Some(first) = steps.first() else {
            return steps;
        };
        let (batch, h) = (first.dims()[0], self.hidden);
        let device = first.device();
        let mut state = Tensor::<2>::zeros([batch, h], &device);
        let mut cell = Tensor::<2>::zeros([batch, h], &device);
        let mut out = Vec::with_capacity(steps.len());
        for x in steps {
            let gi = self.ih.forward(x);
            let gh = self.hh.forward(state.clone());
            if self.lstm {
                let g = gi + gh;
                let ifo = sigmoid(g.clone());
                let i = ifo.clone().slice([0..batch, 0..h]);
                let f = ifo.clone().slice([0..batch, h..2 * h]);
                let o = ifo.slice([0..batch, 3 * h..4 * h]);
                let c = tanh(g.slice([0..batch, 2 * h..3 * h]));
                cell = f * cell + i * c;
                state = o * tanh(cell.clone());
            } else {
                let rz = sigmoid(
                    gi.clone().slice([0..batch, 0..2 * h]) + gh.clone().slice([0..batch, 0..2 * h]),
                );
                let r = rz.clone().slice([0..batch, 0..h]);
                let z = rz.slice([0..batch, h..2 * h]);
                let n = tanh(
                    gi.slice([0..batch, 2 * h..3 * h]) + r * gh.slice([0..batch, 2 * h..3 * h]),
                );
                // h' = (1 - z) n + z h
                state = n.clone() + z * (state - n);
            }
            out.push(state.clone());
        }
        out
    }
}

/// A layer's weights (at most one of them is set), beside its spec.
#[derive(Module, Debug)]
pub struct Layer {
    pub conv: Option<Conv1d>,
    /// A Linear layer (which may carry a LoRA adapter).
    pub linear: Option<super::lora::Linear>,
    pub rnn: Vec<Recurrent>,
    pub batch_norm: Option<BatchNorm>,
    pub layer_norm: Option<LayerNorm>,
    pub dropout: Option<Dropout>,
    #[module(skip)]
    pub spec: LayerSpec,
}

/// Activations between layers: a sequence `[batch, channels, time]` or vectors.
enum Flow {
    Seq(Tensor<3>),
    Flat(Tensor<2>),
}

impl Flow {
    fn seq(self) -> Tensor<3> {
        match self {
            Self::Seq(x) => x,
            Self::Flat(x) => x.unsqueeze_dim(2),
        }
    }

    /// `f` on the channels of every step (`[.., channels]` last).
    fn per_step(self, f: impl Fn(Tensor<3>) -> Tensor<3>) -> Self {
        match self {
            Self::Seq(x) => Self::Seq(f(x.swap_dims(1, 2)).swap_dims(1, 2)),
            Self::Flat(x) => {
                let y = f(x.unsqueeze_dim(1));
                let [b, _, w] = y.dims();
                Self::Flat(y.reshape([b, w]))
            }
        }
    }

    fn map(self, f: impl Fn(Tensor<3>) -> Tensor<3>, g: impl Fn(Tensor<2>) -> Tensor<2>) -> Self {
        match self {
            Self::Seq(x) => Self::Seq(f(x)),
            Self::Flat(x) => Self::Flat(g(x)),
        }
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct SeriesNet {
    pub layers: Vec<Layer>,
}

/// `shape`'s values drawn from `rng` like PyTorch's defaults, U(-k, k), k = 1/sqrt(fan_in).
fn seeded(rng: &mut ChaCha8Rng, shape: &[usize], fan_in: usize) -> Vec<f32> {
    let k = 1.0 / (fan_in.max(1) as f32).sqrt();
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-k..k))
        .collect()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn linear(
    rng: &mut ChaCha8Rng,
    d_in: usize,
    d_out: usize,
    bias: bool,
    fan_in: usize,
    device: &Device,
) -> Linear {
    Linear {
        weight: Param::from_tensor(tensor(
            seeded(rng, &[d_in, d_out], fan_in),
            [d_in, d_out],
            device,
        )),
        bias: bias
            .then(|| Param::from_tensor(tensor(seeded(rng, &[d_out], fan_in), [d_out], device))),
    }
}

impl Layer {
    /// The layer `spec` with fresh weights drawn from `rng` (PyTorch's default rules).
    pub fn new(spec: LayerSpec, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let mut layer = Self {
            conv: None,
            linear: None,
            rnn: Vec::new(),
            batch_norm: None,
            layer_norm: None,
            dropout: None,
            spec: spec.clone(),
        };
        match spec {
            LayerSpec::Conv1d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                bias,
                ..
            } => {
                let mut conv = Conv1dConfig::new(in_channels, out_channels, kernel)
                    .with_stride(stride)
                    .with_dilation(dilation)
                    .with_padding(PaddingConfig1d::Explicit(padding, padding))
                    .with_bias(bias)
                    .init(device);
                let fan_in = in_channels * kernel;
                conv.weight = Param::from_tensor(tensor(
                    seeded(rng, &[out_channels, in_channels, kernel], fan_in),
                    [out_channels, in_channels, kernel],
                    device,
                ));
                conv.bias = bias.then(|| {
                    Param::from_tensor(tensor(
                        seeded(rng, &[out_channels], fan_in),
                        [out_channels],
                        device,
                    ))
                });
                layer.conv = Some(conv);
            }
            LayerSpec::Linear {
                in_features,
                out_features,
                bias,
                ..
            } => {
                layer.linear =
                    Some(linear(rng, in_features, out_features, bias, in_features, device).into())
            }
            LayerSpec::Gru {
                input_size,
                hidden_size,
                num_layers,
                ..
            }
            | LayerSpec::Lstm {
                input_size,
                hidden_size,
                num_layers,
                ..
            } => {
                let lstm = matches!(layer.spec, LayerSpec::Lstm { .. });
                let gates = if lstm { 4 } else { 3 };
                for k in 0..num_layers {
                    let input = if k == 0 { input_size } else { hidden_size };
                    // PyTorch draws every recurrent weight and bias from U(-k, k), k =
                    // 1/sqrt(hidden).
                    let mut draw = |d_in: usize| {
                        linear(rng, d_in, gates * hidden_size, true, hidden_size, device)
                    };
                    let ih = draw(input);
                    let hh = draw(hidden_size);
                    layer.rnn.push(Recurrent {
                        ih,
                        hh,
                        hidden: hidden_size,
                        lstm,
                    });
                }
            }
            LayerSpec::BatchNorm1d {
                num_features, eps, ..
            } => {
                layer.batch_norm = Some(
                    BatchNormConfig::new(num_features)
                        .with_epsilon(eps)
                        .init(device),
                )
            }
            LayerSpec::LayerNorm {
                normalized_shape,
                eps,
                ..
            } => {
                layer.layer_norm = Some(
                    LayerNormConfig::new(normalized_shape)
                        .with_epsilon(eps)
                        .init(device),
                )
            }
            LayerSpec::Dropout { p } => layer.dropout = Some(DropoutConfig::new(p).init()),
            _ => {}
        }
        layer
    }

    /// (checkpoint prefix, module path) pairs of this layer's tensors, the layer being
    /// `layers.{index}`.
    fn weight_map(&self, index: usize) -> Vec<(String, String)> {
        let Some(name) = self.spec.name() else {
            return Vec::new();
        };
        let at = format!("layers.{index}");
        match &self.spec {
            LayerSpec::Conv1d { .. } => vec![(format!("{name}."), format!("{at}.conv."))],
            LayerSpec::Linear { .. } => vec![(format!("{name}."), format!("{at}.linear."))],
            LayerSpec::BatchNorm1d { .. } => {
                vec![(format!("{name}."), format!("{at}.batch_norm."))]
            }
            LayerSpec::LayerNorm { .. } => {
                vec![
                    (format!("{name}.weight"), format!("{at}.layer_norm.gamma")),
                    (format!("{name}.bias"), format!("{at}.layer_norm.beta")),
                ]
            }
            LayerSpec::Gru { num_layers, .. } | LayerSpec::Lstm { num_layers, .. } => (0
                ..*num_layers)
                .flat_map(|k| {
                    [
                        (
                            format!("{name}.weight_ih_l{k}"),
                            format!("{at}.rnn.{k}.ih.weight"),
                        ),
                        (
                            format!("{name}.bias_ih_l{k}"),
                            format!("{at}.rnn.{k}.ih.bias"),
                        ),
                        (
                            format!("{name}.weight_hh_l{k}"),
                            format!("{at}.rnn.{k}.hh.weight"),
                        ),
                        (
                            format!("{name}.bias_hh_l{k}"),
                            format!("{at}.rnn.{k}.hh.bias"),
                        ),
                    ]
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn forward(&self, x: Flow) -> Flow {
        match &self.spec {
            LayerSpec::Conv1d { .. } => Flow::Seq(self.conv.as_ref().unwrap().forward(x.seq())),
            LayerSpec::Linear { .. } => {
                let linear = self.linear.as_ref().unwrap();
                x.per_step(|t| linear.forward(t))
            }
            LayerSpec::Gru { .. } | LayerSpec::Lstm { .. } => {
                let x = x.seq();
                let [batch, channels, time] = x.dims();
                let mut steps: Vec<Tensor<2>> = (0..time)
                    .map(|t| x.clone().narrow(2, t, 1).reshape([batch, channels]))
                    .collect();
                for layer in &self.rnn {
                    steps = layer.run(steps);
                }
                let steps: Vec<Tensor<3>> = steps.into_iter().map(|s| s.unsqueeze_dim(2)).collect();
                Flow::Seq(Tensor::cat(steps, 2))
            }
            LayerSpec::BatchNorm1d { .. } => {
                let bn = self.batch_norm.as_ref().unwrap();
                x.map(
                    |t| bn.forward(t),
                    |t| {
                        let [b, w] = t.dims();
                        bn.forward(t.reshape([b, w, 1])).reshape([b, w])
                    },
                )
            }
            LayerSpec::LayerNorm { .. } => {
                let ln = self.layer_norm.as_ref().unwrap();
                x.per_step(|t| ln.forward(t))
            }
            LayerSpec::MaxPool1d { kernel, stride } => Flow::Seq(
                MaxPool1dConfig::new(*kernel)
                    .with_stride(stride.unwrap_or(*kernel))
                    .init()
                    .forward(x.seq()),
            ),
            LayerSpec::AvgPool1d { kernel, stride } => Flow::Seq(
                AvgPool1dConfig::new(*kernel)
                    .with_stride(stride.unwrap_or(*kernel))
                    .init()
                    .forward(x.seq()),
            ),
            LayerSpec::GlobalAvgPool => {
                let t = x.seq();
                let [b, c, _] = t.dims();
                Flow::Flat(t.mean_dim(2).reshape([b, c]))
            }
            LayerSpec::GlobalMaxPool => {
                let t = x.seq();
                let [b, c, _] = t.dims();
                Flow::Flat(t.max_dim(2).reshape([b, c]))
            }
            LayerSpec::LastStep => {
                let t = x.seq();
                let [b, c, time] = t.dims();
                Flow::Flat(t.slice([0..b, 0..c, time - 1..time]).reshape([b, c]))
            }
            LayerSpec::Flatten => match x {
                Flow::Seq(t) => {
                    let [b, c, time] = t.dims();
                    Flow::Flat(t.reshape([b, c * time]))
                }
                flat => flat,
            },
            LayerSpec::Relu => x.map(relu, relu),
            LayerSpec::Tanh => x.map(tanh, tanh),
            LayerSpec::Sigmoid => x.map(sigmoid, sigmoid),
            LayerSpec::Gelu => x.map(gelu, gelu),
            LayerSpec::LeakyRelu { negative_slope } => {
                let s = *negative_slope;
                x.map(|t| leaky_relu(t, s), |t| leaky_relu(t, s))
            }
            LayerSpec::Dropout { .. } => {
                let d = self.dropout.as_ref().unwrap();
                x.map(|t| d.forward(t), |t| d.forward(t))
            }
            LayerSpec::Normalize => x.map(
                |t| {
                    let norm = t.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
                    t / norm
                },
                |t| {
                    let norm = t.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
                    t / norm
                },
            ),
        }
    }
}

impl SeriesNet {
    /// The layers of `config` with fresh weights (seeded, the same on every backend).
    pub fn new(config: &SeriesConfig, seed: u64, device: &Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self {
            layers: config
                .layers
                .iter()
                .map(|spec| Layer::new(spec.clone(), &mut rng, device))
                .collect(),
        }
    }

    /// (checkpoint prefix, module path) pairs of every tensor.
    pub fn weight_map(&self) -> Vec<(String, String)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.weight_map(i))
            .collect()
    }

    /// Normalised input `[batch, channels, time]` through the layers `range`.
    fn run(&self, x: Flow, range: std::ops::Range<usize>) -> Flow {
        self.layers[range].iter().fold(x, |x, l| l.forward(x))
    }

    /// The output of normalised input `[batch, channels, time]`: `[batch, outputs]`, or
    /// `[batch, outputs, time]` for a per-step network.
    pub fn forward(&self, x: Tensor<3>) -> Flowing {
        match self.run(Flow::Seq(x), 0..self.layers.len()) {
            Flow::Seq(t) => Flowing::Steps(t),
            Flow::Flat(t) => Flowing::Window(t),
        }
    }

    /// The index of the head (the last layer with a projection).
    pub fn head_index(&self) -> usize {
        self.layers
            .iter()
            .rposition(|l| l.spec.projects())
            .unwrap_or(0)
    }
}

/// A network's output.
pub enum Flowing {
    /// One vector per window `[batch, outputs]`.
    Window(Tensor<2>),
    /// One vector per step `[batch, outputs, time]`.
    Steps(Tensor<3>),
}

impl Flowing {
    /// The window output (a per-step output's last step).
    pub fn window(self) -> Tensor<2> {
        match self {
            Self::Window(t) => t,
            Self::Steps(t) => {
                let [b, c, time] = t.dims();
                t.slice([0..b, 0..c, time - 1..time]).reshape([b, c])
            }
        }
    }

    /// The per-step output `[batch, outputs, time]` (a window output as one step).
    pub fn steps(self) -> Tensor<3> {
        match self {
            Self::Window(t) => t.unsqueeze_dim(2),
            Self::Steps(t) => t,
        }
    }
}

/// Adapters go on the Linear layers before the head (PEFT adapts `nn.Linear`, not
/// `nn.Conv1d` with a kernel or `nn.GRU`), by default every one; each is named by its
/// config.json name (`fc1`), as the checkpoint names it. The head trains whole.
impl Adaptable for SeriesNet {
    fn default_targets(&self) -> Option<&'static [&'static str]> {
        None
    }

    fn sites(&mut self) -> Vec<(String, &mut dyn LoraSite)> {
        let head_at = self.head_index();
        (self.layers[..head_at].iter_mut())
            .filter_map(|l| {
                let name = l.spec.name()?.to_string();
                let linear = l.linear.as_mut()?;
                Some((name, linear as &mut dyn LoraSite))
            })
            .collect()
    }
}

/// A series model: network, its config (with the input's and the output's normalisation).
#[derive(Debug, Clone)]
pub struct SeriesModel {
    /// The network.
    pub net: SeriesNet,
    /// What it reads and gives.
    pub config: SeriesConfig,
}

impl SeriesModel {
    /// Load `config` (config.json's text and name) and its weights. Every tensor the layers
    /// name must be in the file with its shape, and nothing else.
    pub fn load(weights: &WeightSource, config: (&str, &str), device: &Device) -> Result<Self> {
        let config = SeriesConfig::parse(config.0, config.1)?;
        let keys = inspect(weights)?;
        for (name, shape) in config.tensors() {
            match keys.get(&name) {
                None => {
                    return Err(Error::Weights {
                        file: weights.name(),
                        message: format!(
                            "tensor `{name}` (shape {shape:?}) that config.json's layers name is \
                             missing"
                        ),
                    });
                }
                Some(found) if *found != shape => {
                    return Err(Error::Weights {
                        file: weights.name(),
                        message: format!(
                            "tensor `{name}` has shape {found:?}, config.json's layers make it \
                             {shape:?}"
                        ),
                    });
                }
                _ => {}
            }
        }
        let mut net = SeriesNet::new(&config, 0, device);
        let map = net.weight_map();
        load_into(&mut net, weights, &map, &["num_batches_tracked"])?;
        Ok(Self { net, config })
    }

    /// The same architecture with fresh weights from `seed` (a from-scratch baseline); the
    /// input normalisation stays.
    pub fn reinitialised(&self, seed: u64, device: &Device) -> Self {
        Self {
            net: SeriesNet::new(&self.config, seed, device),
            config: self.config.clone(),
        }
    }

    /// Class names, for a classifier.
    pub fn labels(&self) -> Option<&[String]> {
        match &self.config.output {
            SeriesOutput::Classes { labels, .. } => Some(labels),
            SeriesOutput::Values { .. } => None,
        }
    }

    /// This model reading `channels` (the model's own and more, in any order): each new
    /// channel gets input weights of zero (so the old channels give what they gave) and the
    /// normalisation `stats` (mean, std) measured on the data; the old ones keep theirs. Fails
    /// naming a model channel the list leaves out.
    pub fn with_channels(
        mut self,
        channels: &[String],
        stats: &[(f32, f32)],
        device: &Device,
    ) -> Result<Self> {
        let old = &self.config.input.channels;
        if channels == old.as_slice() {
            return Ok(self);
        }
        if let Some(missing) = old.iter().find(|c| !channels.contains(c)) {
            return Err(Error::Data(format!(
                "the model reads channel \"{missing}\", which the data (channels {channels:?}) \
                 does not have"
            )));
        }
        // Column j of the new input = old column `from[j]`, or new (zero weights).
        let from: Vec<Option<usize>> = channels
            .iter()
            .map(|c| old.iter().position(|o| o == c))
            .collect();
        let first = self
            .config
            .layers
            .iter()
            .position(LayerSpec::projects)
            .expect("checked: a layer with weights");
        if self.config.layers[..first]
            .iter()
            .any(|l| l.input_width().is_some())
        {
            return Err(Error::Data(
                "new channels cannot be added: a normalisation layer comes before the first \
                 projection"
                    .into(),
            ));
        }
        let layer = &mut self.net.layers[first];
        let remap = |w: Tensor<2>, axis_in: usize| -> Tensor<2> {
            // w has the input along `axis_in`.
            let dims = w.dims();
            let other = dims[1 - axis_in];
            let cols: Vec<Tensor<2>> = from
                .iter()
                .map(|f| match f {
                    Some(i) => {
                        if axis_in == 0 {
                            w.clone().slice([*i..i + 1, 0..other])
                        } else {
                            w.clone().slice([0..other, *i..i + 1])
                        }
                    }
                    None => {
                        if axis_in == 0 {
                            Tensor::zeros([1, other], device)
                        } else {
                            Tensor::zeros([other, 1], device)
                        }
                    }
                })
                .collect();
            Tensor::cat(cols, axis_in)
        };
        match &mut layer.spec {
            LayerSpec::Conv1d { in_channels, .. } => {
                let conv = layer.conv.as_mut().unwrap();
                let w = conv.weight.val();
                let [o, _, k] = w.dims();
                let parts: Vec<Tensor<3>> = from
                    .iter()
                    .map(|f| match f {
                        Some(i) => w.clone().slice([0..o, *i..i + 1, 0..k]),
                        None => Tensor::zeros([o, 1, k], device),
                    })
                    .collect();
                conv.weight = Param::from_tensor(Tensor::cat(parts, 1));
                *in_channels = channels.len();
            }
            LayerSpec::Linear { in_features, .. } => {
                let l = layer.linear.as_mut().unwrap();
                l.weight = Param::from_tensor(remap(l.weight.val(), 0));
                *in_features = channels.len();
            }
            LayerSpec::Gru { input_size, .. } | LayerSpec::Lstm { input_size, .. } => {
                let l = &mut layer.rnn[0].ih;
                l.weight = Param::from_tensor(remap(l.weight.val(), 0));
                *input_size = channels.len();
            }
            _ => unreachable!("projects"),
        }
        self.config.layers[first] = layer.spec.clone();
        let input = &mut self.config.input;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for (j, f) in from.iter().enumerate() {
            match f {
                Some(i) => {
                    mean.push(input.mean[*i]);
                    std.push(input.std[*i]);
                }
                None => {
                    mean.push(stats[j].0);
                    std.push(stats[j].1);
                }
            }
        }
        input.channels = channels.to_vec();
        input.mean = mean;
        input.std = std;
        Ok(self)
    }

    /// This model with a new head (seeded) for `output`, when its width or kind differs from
    /// the model's; else the model's own head stays and only the names/scaling change.
    pub fn with_output(mut self, output: SeriesOutput, seed: u64, device: &Device) -> Self {
        let head = self.config.head_index();
        let keep = output.width() == self.config.output.width()
            && std::mem::discriminant(&output) == std::mem::discriminant(&self.config.output)
            && match (&output, &self.config.output) {
                (
                    SeriesOutput::Classes { labels: a, .. },
                    SeriesOutput::Classes { labels: b, .. },
                ) => a == b,
                _ => true,
            };
        if !keep {
            let spec = match self.config.layers[head].clone() {
                LayerSpec::Conv1d {
                    name,
                    in_channels,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    bias,
                    ..
                } => LayerSpec::Conv1d {
                    name,
                    in_channels,
                    out_channels: output.width(),
                    kernel,
                    stride,
                    padding,
                    dilation,
                    bias,
                },
                LayerSpec::Linear {
                    name,
                    in_features,
                    bias,
                    ..
                } => LayerSpec::Linear {
                    name,
                    in_features,
                    out_features: output.width(),
                    bias,
                },
                LayerSpec::Gru {
                    name, input_size, ..
                } => LayerSpec::Gru {
                    name,
                    input_size,
                    hidden_size: output.width(),
                    num_layers: 1,
                },
                LayerSpec::Lstm {
                    name, input_size, ..
                } => LayerSpec::Lstm {
                    name,
                    input_size,
                    hidden_size: output.width(),
                    num_layers: 1,
                },
                other => other,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            self.net.layers[head] = Layer::new(spec.clone(), &mut rng, device);
            self.config.layers[head] = spec;
        }
        self.config.output = output;
        self
    }

    /// Layers with weights before the head (for `Unfreeze::Last`).
    pub fn block_count(&self) -> usize {
        let head = self.config.head_index();
        self.config.layers[..head]
            .iter()
            .filter(|l| l.name().is_some())
            .count()
    }

    /// `net` ready to train on `device` (autodiff): dropout on, gradients for the head and,
    /// with `unfreeze`, for the last N layers with weights or all. Returns the net and the
    /// head's parameter group.
    pub fn trainable(
        &self,
        unfreeze: Option<Unfreeze>,
        device: &Device,
    ) -> Result<(SeriesNet, ParamGroup)> {
        let net = self.net.clone().fork(device).train();
        let head_at = self.config.head_index();
        let mut head = ParamGroup::ids_from_module(net.layers[head_at].clone());
        // Layers after the head (a normalisation, say) train with it.
        for layer in &net.layers[head_at + 1..] {
            head = head.fuse(&ParamGroup::ids_from_module(layer.clone()));
        }
        let blocks: Vec<ParamGroup> = net.layers[..head_at]
            .iter()
            .filter(|l| l.spec.name().is_some())
            .map(|l| ParamGroup::ids_from_module(l.clone()))
            .collect();
        let what = self
            .config
            .name
            .clone()
            .unwrap_or_else(|| "the network".into());
        let Some(group) = super::unfrozen(&head, &blocks, unfreeze, &what)? else {
            // Every parameter: a phase before (the head's) may have turned gradients off, and
            // `no_grad` persists across `fork` and `train`.
            return Ok((net.set_require_grad(true), head));
        };
        Ok((net.no_grad().set_require_grad_group(group, true), head))
    }

    /// `net` ready for a LoRA phase on `device` (autodiff): adapters on the Linear layers
    /// before the head that `options` targets (drawn from `seed`; kept when the net has them
    /// already), gradients and training flags on for the adapters and the head (with the
    /// layers after it) only: the frozen layers' BatchNorm statistics stay as they were.
    /// Returns the net and the head's group.
    pub fn trainable_lora(
        &self,
        options: &LoraOptions,
        seed: u64,
        device: &Device,
    ) -> Result<(SeriesNet, ParamGroup)> {
        let mut net = self.net.clone();
        if !lora::has_adapters(&mut net) {
            lora::add_adapters(&mut net, options, seed)?;
        }
        let mut net = net.fork(device).train();
        let head_at = self.config.head_index();
        let head = (net.layers[head_at..].iter()).fold(ParamGroup::from_ids(Vec::new()), |g, l| {
            g.fuse(&ParamGroup::ids_from_module(l.clone()))
        });
        let group = lora::adapter_group(&mut net, head.clone());
        Ok((net.freeze().unfreeze_group(group), head))
    }

    /// The weights as safetensors under the config's (PyTorch) names (adapters merged).
    pub fn to_safetensors(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let mut net = self.net.clone();
        if lora::has_adapters(&mut net) {
            lora::merge(&mut net);
        }
        save_safetensors(&net, &self.net.weight_map(), metadata)
    }

    /// The checkpoint name of the head layer (PEFT's `modules_to_save`).
    pub fn head_name(&self) -> Option<&str> {
        self.config.layers[self.config.head_index()].name()
    }

    /// config.json of this model.
    pub fn config_json(&self) -> String {
        serde_json::to_string_pretty(&self.config).expect("serialisable") + "\n"
    }

    /// A copy on the CPU device with every tensor read back (awaited reads).
    pub async fn to_host(&self) -> Result<Self> {
        Ok(Self {
            net: super::read_back(&self.net).await?,
            config: self.config.clone(),
        })
    }
}

/// config.json text is a series model's.
pub fn is_series_config(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("architecture")
                .and_then(|a| a.as_str())
                .map(|a| a == "series")
        })
        .unwrap_or(false)
}
