//! How many examples go through the model at once while training: the recipe's `batch_size` is
//! the batch an optimiser step sees; it is cut into micro-batches whose gradients add up to the
//! whole batch's, so that a step fits the recipe's `memory_mib` on the device. An allocation
//! that fails anyway halves the micro-batch and retries the step.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::Error;

/// What one example holds on the device through a training step (the activations the
/// backward pass keeps and their gradients), in bytes, besides the model and its optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    /// Bytes per example.
    pub per_example: u64,
    /// Bytes that do not grow with the batch (weights, gradients, optimiser moments).
    pub fixed: u64,
    /// The largest single buffer per example (one tensor, which must fit the adapter's
    /// `maxBufferSize` and `maxStorageBufferBindingSize` whatever the budget).
    pub largest: u64,
}

pub(crate) const MIB: u64 = 1 << 20;

impl Footprint {
    /// An image model of `params` parameters on `side` x `side` inputs.
    /// Measured in burn's WebGPU pool for MobileNetV2 at 224x224, every layer training: about
    /// 150 MiB an example (4.9 GiB at batch 32, BENCHMARKS.md); scaled by the pixels.
    pub fn image(side: usize, params: usize) -> Self {
        let pixels = (side * side) as u64;
        Self {
            per_example: 150 * MIB * pixels / (224 * 224),
            fixed: weights(params),
            // The widest activation (and its gradient): MobileNetV2's first expansion, 96
            // channels at half resolution, 96 x (side/2)^2 floats. (Its depthwise and 1x1
            // convolutions unfold nothing: batch 32 ran in single buffers of 128 MiB on llvmpipe.)
            largest: 4 * 96 * pixels / 4,
        }
    }

    /// The speech_embedding network on windows of `frames` mel frames: its activations
    /// counted layer by layer (each convolution's output, its activation and floor, and their
    /// gradients: four copies), as the network is small enough to count.
    pub fn audio(frames: usize, params: usize) -> Self {
        let sizes: Vec<u64> = crate::models::speech_embedding::activation_sizes(frames)
            .into_iter()
            .map(|s| s as u64)
            .collect();
        let floats: u64 = sizes.iter().sum();
        Self {
            per_example: 4 * 4 * floats,
            fixed: weights(params),
            largest: 4 * sizes.iter().copied().max().unwrap_or(1),
        }
    }

    /// A text encoder of `layers` layers of width `hidden` on inputs of `tokens` tokens:
    /// about 150 MiB an example for all-MiniLM-L6-v2 at 128 tokens (5.0 GiB at batch 32),
    /// scaled by width, depth and length.
    pub fn text(hidden: usize, layers: usize, tokens: usize, params: usize) -> Self {
        let size = (hidden * layers.max(1) * tokens) as u64;
        let (hidden, tokens) = (hidden as u64, tokens as u64);
        Self {
            per_example: 150 * MIB * size / (384 * 6 * 128),
            fixed: weights(params),
            // Attention scores (one head per 64 dimensions, tokens x tokens each) or the
            // feed-forward layer's 4 x hidden activations, whichever is larger.
            largest: 4 * ((hidden / 64).max(1) * tokens * tokens).max(4 * hidden * tokens),
        }
    }

    /// Whisper on 30 s clips (`positions` encoder positions, `d_model` wide, `heads` heads,
    /// `ffn` feed-forward width) training the decoder on transcripts of up to `tokens` tokens
    /// (logits over `vocab`) and `encoder_layers` of the encoder's layers (0: the frozen
    /// encoder's states are given; `stem`: its convolutions too, over `2 * positions` frames),
    /// counted as the backward pass keeps them. An encoder layer holds its attention scores
    /// three times (the scores, their exponentials, the softmax: `heads * positions^2` each,
    /// 54 MiB for tiny.en) and about 16 copies of its `positions x d_model` states and 4 of
    /// the feed-forward's: 225 MiB a layer, 981 MiB a clip for tiny.en with its decoder and
    /// stem, near its natively measured step (7.65 GiB resident for 8 clips at once, every
    /// layer training, 1.53 GiB for one at a time). The
    /// decoder holds its logits four times (the logits, log-softmax and its parts) and its
    /// cross-attention's scores three times.
    #[allow(clippy::too_many_arguments)]
    pub fn whisper(
        positions: usize,
        d_model: usize,
        heads: usize,
        ffn: usize,
        encoder_layers: usize,
        stem: bool,
        tokens: usize,
        vocab: usize,
        params: usize,
    ) -> Self {
        let (t, d, h, f) = (positions as u64, d_model as u64, heads as u64, ffn as u64);
        let (l, v) = (tokens.max(1) as u64, vocab as u64);
        let encoder_layer = 3 * h * t * t + 16 * t * d + 4 * t * f;
        let stem_floats = if stem { 5 * 2 * t * d + 2 * t * d } else { 0 };
        // Per decoder layer: its own states and feed-forward, and the cross-attention's scores.
        let decoder = 4 * l * v + 4 * (16 * l * d + 4 * l * f + 3 * h * l * t);
        let floats = encoder_layers as u64 * encoder_layer + stem_floats + decoder;
        Self {
            per_example: 4 * floats,
            fixed: weights(params),
            largest: 4 * (if encoder_layers > 0 { h * t * t } else { 0 }).max(l * v),
        }
    }

    /// Examples per micro-batch for batches of `batch` within `budget_mib` and, on a GPU,
    /// the adapter's largest buffer `max_buffer` (bytes): at least 1.
    pub fn micro_batch(&self, batch: usize, budget_mib: usize, max_buffer: Option<u64>) -> usize {
        let budget = (budget_mib as u64 * MIB).saturating_sub(self.fixed);
        let fits = budget / self.per_example.max(1);
        let fits = match max_buffer {
            Some(max) => fits.min(max / self.largest.max(1)),
            None => fits,
        };
        (fits as usize).clamp(1, batch.max(1))
    }

    /// Examples per micro-batch for batches of `batch` within `share` of `budget_mib`, from a
    /// measure: `rows` examples grew the device's pool by `grown` bytes from `before` (the
    /// model's weights and what else it held). The growth holds the step's gradients once
    /// besides the examples; the step adds their running sum and the optimiser's moments. At
    /// least 1.
    pub fn measured(
        &self,
        rows: usize,
        grown: u64,
        before: u64,
        batch: usize,
        budget_mib: usize,
        share: f64,
    ) -> usize {
        let gradients = self.fixed / 4;
        let per_example = (grown.saturating_sub(gradients) / rows.max(1) as u64).max(1);
        let room = (budget_mib as u64 * MIB).saturating_sub(before + 3 * gradients);
        (((room as f64 * share) as u64 / per_example) as usize).clamp(1, batch.max(1))
    }
}

/// f32 weights, their gradients and two optimiser moments.
fn weights(params: usize) -> u64 {
    16 * params as u64
}

/// Whether `err` says the device could not allocate a buffer (out of memory, a buffer larger
/// than the adapter allows): what a smaller micro-batch can avoid.
pub fn is_allocation_failure(err: &Error) -> bool {
    let text = err.to_string();
    [
        "could not allocate",
        "can't allocate",
        "BufferTooBig",
        "out of memory",
        "Out of memory",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Test hook: micro-batches above this many examples fail as a device that cannot allocate
/// their buffers would (0: none).
static SIMULATED_LIMIT: AtomicUsize = AtomicUsize::new(0);

/// Make every micro-batch of more than `rows` examples fail to allocate (`None`: stop), as a
/// GPU with too little memory would: for tests of the retry.
#[doc(hidden)]
pub fn simulate_allocation_limit(rows: Option<usize>) {
    SIMULATED_LIMIT.store(rows.unwrap_or(0), Ordering::SeqCst);
}

/// The simulated failure for a micro-batch of `rows` examples, if one is set.
pub(crate) fn simulated_failure(rows: usize) -> crate::Result<()> {
    let limit = SIMULATED_LIMIT.load(Ordering::SeqCst);
    if limit > 0 && rows > limit {
        return Err(Error::Compute(format!(
            "the device could not allocate a buffer for {rows} examples (simulated: at most \
             {limit})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_micro_batch_fits_the_budget() {
        let mobilenet = Footprint::image(224, 3_504_872);
        // 1536 MiB less 53 MiB of weights and moments, 150 MiB an example: 9.
        assert_eq!(mobilenet.micro_batch(32, 1536, None), 9);
        assert_eq!(mobilenet.micro_batch(4, 1536, None), 4);
        assert_eq!(mobilenet.micro_batch(32, 1, None), 1);
        // 4.6 MiB for the widest activation of one example: a 16 MiB buffer limit takes 3,
        // Chromium's default 128 MiB leaves the budget's 9.
        assert_eq!(mobilenet.largest, 4_816_896);
        assert_eq!(mobilenet.micro_batch(32, 1536, Some(16 << 20)), 3);
        assert_eq!(mobilenet.micro_batch(32, 1536, Some(128 << 20)), 9);
        let minilm = Footprint::text(384, 6, 128, 22_700_000);
        assert_eq!(minilm.largest, 786_432);
        assert_eq!(minilm.micro_batch(32, 1536, Some(1 << 20)), 1);
        assert!(is_allocation_failure(&simulated_failure_for_test()));
    }

    #[test]
    fn a_measured_pool_sets_the_micro_batch() {
        let mobilenet = Footprint::image(224, 3_504_872);
        let gradients = mobilenet.fixed / 4;
        // 4 examples grew the pool by 200 MiB each and the gradients once, from 100 MiB: the
        // 1536 MiB less 100, less the gradients' sum and two moments (40 MiB), hold 6.
        let grown = 4 * 200 * MIB + gradients;
        assert_eq!(mobilenet.measured(4, grown, 100 * MIB, 32, 1536, 1.0), 6);
        // Half as much an example: over twice as many; never more than the batch, never below 1.
        assert_eq!(
            mobilenet.measured(4, grown / 2, 100 * MIB, 32, 1536, 1.0),
            14
        );
        // Planning for 60% of the room: 4.
        assert_eq!(mobilenet.measured(4, grown, 100 * MIB, 32, 1536, 0.6), 4);
        assert_eq!(mobilenet.measured(4, grown, 100 * MIB, 4, 1536, 1.0), 4);
        assert_eq!(mobilenet.measured(4, grown, 2000 * MIB, 32, 1536, 1.0), 1);
        // A pool that did not grow (pages already there) says nothing against the batch.
        assert_eq!(mobilenet.measured(4, 0, 100 * MIB, 32, 1536, 1.0), 32);
    }

    #[test]
    fn whisper_tiny_en_trains_one_clip_at_a_time_when_its_encoder_trains() {
        let tiny = |layers, stem| {
            Footprint::whisper(1500, 384, 6, 1536, layers, stem, 40, 51_865, 37_760_640)
        };
        // Every layer: about 1 GiB a clip over 576 MiB of weights and moments: 1 in the
        // default 1.5 GiB, 3 in 4 GiB; the largest buffer is one clip's attention scores.
        let all = tiny(4, true);
        assert_eq!(all.per_example / MIB, 981);
        assert_eq!(all.micro_batch(8, 1536, None), 1);
        assert_eq!(all.micro_batch(8, 4096, None), 3);
        assert_eq!(all.largest, 54_000_000);
        // The decoder alone on cached states: a whole batch of 8 (about 55 MiB a clip).
        let decoder = tiny(0, false);
        assert_eq!(decoder.per_example / MIB, 55);
        assert_eq!(decoder.micro_batch(8, 1536, None), 8);
        assert_eq!(decoder.largest, 4 * 40 * 51_865);
    }

    fn simulated_failure_for_test() -> Error {
        Error::Compute("the device could not allocate a buffer of 147.0 MiB".into())
    }
}
