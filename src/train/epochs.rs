//! The one epoch loop every phase runs (the head on cached features, images through the
//! backbone, text through the encoder), in the manner of burn's `TrainStep`/`ValidStep`: a kind
//! of model says how it trains on an epoch's rows and how it is validated; shuffling, the best
//! epoch, early stopping and the report are the loop's.

use burn::module::Module;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::run::{PhaseReport, PhaseRun, Predictions, Validation};
use super::snapshot::EpochState;
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

    /// What the epoch's model is judged by: the classes [`Self::validate`] gives, unless a
    /// kind of model measures an error instead (regressions).
    async fn judge(&mut self, model: &Self::Model) -> Result<Validation> {
        Ok(match self.validate(model).await? {
            Some(p) => Validation::Classes(p),
            None => Validation::None,
        })
    }
}

/// Epoch checkpoints of a phase: where to take up (a checkpoint's state of this phase), and
/// whether to deliver the state after each epoch but the last (as [`Progress::Saved`]).
#[derive(Debug, Clone, Default)]
pub struct Checkpoints {
    /// The state to resume from.
    pub from: Option<EpochState>,
    /// Deliver the state after every epoch.
    pub every_epoch: bool,
}

/// Run `run`'s epochs of `steps` on `model` over `train_rows`, shuffled by `rng` each epoch,
/// from the start or from `checkpoints.from`. Returns the kept model (the best validation
/// epoch's, else the last; eval mode), the report and the kept epoch's validation predictions.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_epochs<S: Steps>(
    steps: &mut S,
    mut model: S::Model,
    train_rows: &[usize],
    epochs: usize,
    mut rng: ChaCha8Rng,
    mut run: PhaseRun,
    checkpoints: Checkpoints,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(S::Model, PhaseReport, Option<Predictions>)> {
    let mut order = train_rows.to_vec();
    let mut kept = None;
    let mut first = 1;
    if let Some(state) = &checkpoints.from {
        let (resumed, resumed_kept) = run.restore(state, model)?;
        (model, kept) = (resumed, Some(resumed_kept));
        // The orders the epochs done were shuffled into, drawn again.
        for _ in 0..state.state.epoch {
            order.shuffle(&mut rng);
        }
        first = state.state.epoch + 1;
    }
    for epoch in first..=epochs {
        order.shuffle(&mut rng);
        run.start_epoch(epoch);
        // Without a kept epoch yet, the last good model is the one the phase starts from (held
        // only then: a kept one makes it an extra copy of the weights).
        let good = kept.is_none().then(|| model.clone());
        model = match steps
            .train_epoch(model, &order, epoch, &mut run, on_progress)
            .await
        {
            Ok(model) => model,
            Err(crate::Error::Diverged(what)) => {
                let kept_epoch = match kept {
                    Some(_) => run.report.best_epoch,
                    None => epoch - 1,
                };
                let message = run.diverged(&what, kept_epoch);
                if on_progress(&Progress::Notice { message }) == Control::Cancel {
                    return Err(crate::Error::Cancelled);
                }
                let (report, predictions) = run.finish();
                return Ok(match (kept, good) {
                    (Some(kept), _) => (kept, report, predictions),
                    // The model the phase started from, judged as the phase's own are.
                    (None, good) => {
                        let good = good.expect("held while no epoch is kept").valid();
                        let predictions = match steps.judge(&good).await? {
                            Validation::Classes(p) => Some(p),
                            Validation::Error(_) | Validation::None => None,
                        };
                        (good, report, predictions)
                    }
                });
            }
            Err(err) => return Err(err),
        };
        let validation = steps.judge(&model.valid()).await?;
        let end = run.end_epoch(epoch, validation, on_progress)?;
        if end.improved {
            kept = Some(model.valid());
        }
        if end.stop {
            break;
        }
        if checkpoints.every_epoch && epoch < epochs {
            let state = run.snapshot(epoch, &model, kept.as_ref()).await?;
            if on_progress(&Progress::Saved(Box::new(state))) == Control::Cancel {
                return Err(crate::Error::Cancelled);
            }
        }
    }
    let (report, predictions) = run.finish();
    Ok((kept.unwrap_or_else(|| model.valid()), report, predictions))
}
