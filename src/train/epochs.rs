//! The one epoch loop every phase runs (the head on cached features, images through the
//! backbone, text through the encoder), in the manner of burn's `TrainStep`/`ValidStep`: a kind
//! of model says how it trains on an epoch's rows and how it is validated; shuffling, the best
//! epoch, early stopping and the report are the loop's.

use burn::module::Module;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::run::{PhaseReport, PhaseRun, Predictions};
use super::{Control, Progress};
use crate::Result;

/// How one kind of model trains and validates.
pub(crate) trait Steps {
    /// The model being trained (autodiff device while training; `valid()` for evaluation).
    type Model: Module;

    /// One epoch over `order` (the training rows, shuffled), every optimiser step through
    /// `run.step`. Returns the updated model.
    async fn train_epoch(
        &mut self,
        model: Self::Model,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<Self::Model>;

    /// The validation rows' (labels, predictions) under `model` in eval mode; `None` without
    /// validation rows.
    async fn validate(&mut self, model: &Self::Model) -> Result<Option<Predictions>>;
}

/// Run `run`'s epochs of `steps` on `model` over `train_rows`, shuffled by `rng` each epoch.
/// Returns the kept model (the best validation epoch's, else the last; eval mode), the report
/// and the kept epoch's validation predictions.
pub(crate) async fn run_epochs<S: Steps>(
    steps: &mut S,
    mut model: S::Model,
    train_rows: &[usize],
    epochs: usize,
    mut rng: ChaCha8Rng,
    mut run: PhaseRun,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(S::Model, PhaseReport, Option<Predictions>)> {
    let mut order = train_rows.to_vec();
    let mut kept = None;
    for epoch in 1..=epochs {
        order.shuffle(&mut rng);
        model = steps
            .train_epoch(model, &order, epoch, &mut run, on_progress)
            .await?;
        let (truth, predicted) = match steps.validate(&model.valid()).await? {
            Some((truth, predicted)) => (truth, Some(predicted)),
            None => (Vec::new(), None),
        };
        let end = run.end_epoch(epoch, truth, predicted, on_progress)?;
        if end.improved {
            kept = Some(model.valid());
        }
        if end.stop {
            break;
        }
    }
    let (report, predictions) = run.finish();
    Ok((kept.unwrap_or_else(|| model.valid()), report, predictions))
}
