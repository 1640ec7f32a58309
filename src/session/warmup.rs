//! The warm-up: while the user picks data, the device compiles the kernels the first training
//! step needs (on WebGPU, shader compilation is a large part of the first step's wait). It
//! runs on its own copy of the model, so the session stays free for the dataset.

use burn::prelude::*;

use super::Model;
use crate::Result;
use crate::data::FeatureSet;
use crate::error::compute;
use crate::train::{Control, Recipe, head::train_head_rows};

/// A loaded copy of the session's model and its kind's default recipe (see
/// [`super::Session::warm_up`]).
pub struct WarmUp {
    pub(super) model: Model,
    pub(super) recipe: Recipe,
    pub(super) device: Device,
}

/// Images in the warm-up's dummy batch: few, since on an emulated GPU each image costs its
/// full compute, and a kernel compiled for one batch size serves the others.
const IMAGES: usize = 1;

impl WarmUp {
    /// The model's features of a dummy input (an image of the architecture's size, one short
    /// sentence, or a window of silence), then one step of a head on dummy features with the recipe's optimiser.
    /// `stop()` is asked before each part (e.g. the user chose another model); a stopped
    /// warm-up returns `Ok(false)`, a finished one `Ok(true)`.
    pub async fn run(self, stop: &dyn Fn() -> bool) -> Result<bool> {
        if stop() {
            return Ok(false);
        }
        let dim = match &self.model {
            Model::Image(m) => {
                let side = m.arch().preprocess().crop as usize;
                let images = Tensor::<4>::zeros([IMAGES, 3, side, side], &self.device);
                let pooled = m.folded().features(images);
                pooled.into_data_async().await.map_err(compute)?;
                m.feature_dim()
            }
            Model::Text(m) => {
                let tokens = m.tokenizer.encode(&["a warm-up sentence"])?;
                let pooled = m.net.features(&tokens, &self.device)?;
                pooled.into_data_async().await.map_err(compute)?;
                m.feature_dim()
            }
            Model::Transcription(m) => {
                // The encoder on 30 s of silence and the decoder's first step compile their
                // kernels (there is no new head to warm).
                let mel = Tensor::<3>::zeros(
                    [1, m.config.num_mel_bins, crate::data::mel::WHISPER_FRAMES],
                    &self.device,
                );
                let states = m.net.encode(mel);
                let prompt: Vec<i64> = m.config.prompt().iter().map(|&t| t as i64).collect();
                let n = prompt.len();
                let tokens = Tensor::<2, Int>::from_data(
                    burn::tensor::TensorData::new(prompt, [1, n]),
                    &self.device,
                );
                let logits = m.net.logits(states, tokens);
                logits.into_data_async().await.map_err(compute)?;
                return Ok(true);
            }
            Model::Series(m) => {
                // The network on a window of zeros compiles its kernels; its head is the
                // data's to make.
                let time = m.config.input.window.unwrap_or(64);
                let x = Tensor::<3>::zeros([1, m.config.input.channels.len(), time], &self.device);
                let out = m.net.forward(x).steps();
                out.into_data_async().await.map_err(compute)?;
                return Ok(true);
            }
            Model::Audio(m) => {
                let window = vec![0.0f32; m.options.window_samples()];
                let front = crate::data::mel::LogMel::new();
                let mel = crate::models::audio::mel_batch(&front, &[&window], &self.device);
                let pooled = m.net.features(mel);
                pooled.into_data_async().await.map_err(compute)?;
                m.feature_dim()
            }
        };
        if stop() {
            return Ok(false);
        }
        let set = FeatureSet::new(
            dim,
            vec!["a".into(), "b".into()],
            vec![0.0; 2 * dim],
            vec![0, 1],
        )?;
        let mut spec = self.recipe.phase_spec(self.recipe.head.spec());
        (spec.epochs, spec.batch_size) = (1, 2);
        let mut go_on = |_: &_| {
            if stop() {
                Control::Cancel
            } else {
                Control::Continue
            }
        };
        match train_head_rows(&set, &[0, 1], &[], &spec, 0, &self.device, &mut go_on).await {
            Ok(_) => Ok(true),
            Err(crate::Error::Cancelled) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
