//! Phase 1: train the new head on fixed features with AdamW.
//!
//! Async so the same loop runs in the browser, where every read-back from the GPU must be
//! awaited; natively it is driven by a trivial executor.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use super::{Control, Progress, Recipe};
use crate::data::FeatureSet;
use crate::models::{Head, HeadConfig};
use crate::{Error, Result};

/// What a head-only run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadReport {
    /// Loss of each step, in order.
    pub losses: Vec<f32>,
    /// Validation accuracy after each epoch (empty without validation rows).
    pub val_accuracy: Vec<f64>,
    /// Rows in the training and validation splits.
    pub train_rows: usize,
    /// Rows held out.
    pub val_rows: usize,
    /// Wall time of the phase in seconds.
    pub seconds: f64,
}

impl HeadReport {
    /// Mean of the first and last `n` step losses, to say whether the loss fell.
    pub fn loss_drop(&self, n: usize) -> (f32, f32) {
        let n = n.clamp(1, self.losses.len().max(1));
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len().max(1) as f32;
        (
            mean(&self.losses[..n.min(self.losses.len())]),
            mean(&self.losses[self.losses.len().saturating_sub(n)..]),
        )
    }
}

fn compute(err: impl std::fmt::Display) -> Error {
    Error::Compute(err.to_string())
}

/// Train a fresh head on `set` per `recipe.head`, validating on a stratified split.
///
/// `on_progress` sees every event and may cancel between steps. Returns the trained head
/// (plain device, no autodiff) and the report.
pub async fn train_head(
    set: &FeatureSet,
    recipe: &Recipe,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(Head, HeadReport)> {
    recipe.validate()?;
    let phase = &recipe.head;
    let (mut train_rows, val_rows) = set.stratified_split(recipe.val_fraction, recipe.seed);
    if train_rows.is_empty() {
        return Err(Error::Data(
            "no training rows left after the validation split".into(),
        ));
    }
    let classes = set.classes().len();
    if classes < 2 {
        return Err(Error::Data(format!(
            "a classifier needs at least 2 classes, the data has {classes}"
        )));
    }

    let ad = device.clone().autodiff();
    let mut head = HeadConfig::new(set.dim(), classes).init_seeded(recipe.seed, &ad);
    let mut optim = AdamWConfig::new()
        .with_weight_decay(phase.weight_decay)
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);

    let steps_per_epoch = train_rows.len().div_ceil(phase.batch_size);
    let total_steps = steps_per_epoch * phase.epochs;
    let mut rng = ChaCha8Rng::seed_from_u64(recipe.seed);
    let mut report = HeadReport {
        losses: Vec::with_capacity(total_steps),
        val_accuracy: Vec::new(),
        train_rows: train_rows.len(),
        val_rows: val_rows.len(),
        seconds: 0.0,
    };
    let start = Instant::now();
    let mut rows_done = 0usize;

    for epoch in 1..=phase.epochs {
        train_rows.shuffle(&mut rng);
        let mut epoch_loss = 0.0f32;
        for batch in train_rows.chunks(phase.batch_size) {
            let (x, y) = set.gather(batch);
            let x = Tensor::<2>::from_data(TensorData::new(x, [batch.len(), set.dim()]), &ad);
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [batch.len()]), &ad);
            let loss = loss_fn.forward(head.forward(x), y);
            // The page plots every step's loss, so it is read back each step; the read is
            // awaited (never blocking), which also lets the browser deliver a cancel message.
            let loss_value = loss
                .clone()
                .into_scalar_async::<f32>()
                .await
                .map_err(compute)?;
            if !loss_value.is_finite() {
                return Err(Error::Compute(format!(
                    "loss became {loss_value} at epoch {epoch}, step {}: lower head.lr ({})",
                    report.losses.len() + 1,
                    phase.lr
                )));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(phase.lr, head, grads);

            report.losses.push(loss_value);
            epoch_loss += loss_value;
            rows_done += batch.len();
            let elapsed = start.elapsed().as_secs_f64().max(1e-9);
            let throughput = rows_done as f64 / elapsed;
            let step = report.losses.len();
            let event = Progress::Step {
                phase: "head".into(),
                epoch,
                step,
                total_steps,
                loss: loss_value,
                throughput,
                eta_s: (total_steps - step) as f64 * elapsed / step as f64,
            };
            if on_progress(&event) == Control::Cancel {
                return Err(Error::Cancelled);
            }
        }
        let val_accuracy = if val_rows.is_empty() {
            None
        } else {
            Some(accuracy(&head.valid(), set, &val_rows, device).await?)
        };
        report.val_accuracy.extend(val_accuracy);
        let event = Progress::Epoch {
            phase: "head".into(),
            epoch,
            train_loss: epoch_loss / steps_per_epoch as f32,
            val_accuracy,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok((head.valid(), report))
}

/// Fraction of `rows` whose arg-max logit is their label, evaluated in batches.
pub async fn accuracy(
    head: &Head,
    set: &FeatureSet,
    rows: &[usize],
    device: &Device,
) -> Result<f64> {
    let mut correct = 0usize;
    for batch in rows.chunks(1024) {
        let (x, y) = set.gather(batch);
        let x = Tensor::<2>::from_data(TensorData::new(x, [batch.len(), set.dim()]), device);
        let predicted = head
            .forward(x)
            .argmax(1)
            .into_data_async()
            .await
            .map_err(compute)?;
        correct += predicted
            .iter::<i64>()
            .zip(&y)
            .filter(|(p, t)| p == *t)
            .count();
    }
    Ok(correct as f64 / rows.len() as f64)
}
