//! Phase 1 on cached features: train the new head on the frozen backbone's pooled features.
//!
//! Async so the same loop runs in the browser, where every read-back from the GPU must be
//! awaited; natively it is driven by a trivial executor.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::epochs::{Checkpoints, Steps, run_epochs};
use super::recipe::PhaseSpec;
use super::run::{PhaseReport, PhaseRun, Predictions, compute};
use super::{Control, Progress, Recipe};
use crate::data::FeatureSet;
use crate::models::{Head, HeadConfig};
use crate::{Error, Result};

/// Train a fresh head on `set` per `recipe.head`, validating on a stratified split.
///
/// `on_progress` sees every event and may cancel between steps. Returns the kept head (the best
/// validation epoch's; plain device, no autodiff) and the report.
pub async fn train_head(
    set: &FeatureSet,
    recipe: &Recipe,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(Head, PhaseReport)> {
    recipe.validate()?;
    let (train_rows, val_rows) = set.stratified_split(recipe.val_fraction, recipe.seed);
    let (head, report, _) = train_head_rows(
        set,
        &train_rows,
        &val_rows,
        &recipe.head.spec(),
        recipe.seed,
        device,
        on_progress,
    )
    .await?;
    Ok((head, report))
}

/// Train a fresh head (seeded init) on `train_rows` of `set`, validating on `val_rows` after
/// each epoch. Returns the kept head, the report and the kept epoch's validation predictions.
pub async fn train_head_rows(
    set: &FeatureSet,
    train_rows: &[usize],
    val_rows: &[usize],
    spec: &PhaseSpec,
    seed: u64,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(Head, PhaseReport, Option<Predictions>)> {
    let (dim, classes) = (set.dim(), set.classes().len());
    let mut features = set;
    train_head_on(
        &mut features,
        dim,
        classes,
        train_rows,
        val_rows,
        spec,
        seed,
        device,
        on_progress,
    )
    .await
}

/// Where the head phase's features come from: a set at hand, or a backbone computing them as
/// the first epoch asks ([`super::features::Stream`]).
pub(crate) trait HeadFeatures {
    /// Before the first step: the first epoch's order of the training rows, and the
    /// validation rows (a stream computes features in this order).
    fn plan(&mut self, _first_epoch: &[usize], _val_rows: &[usize]) {}

    /// The features (row-major, one row per feature vector) and labels of those of `rows`
    /// that have features, in the order of `rows`; a row whose input could not be read has
    /// none and is left out.
    async fn gather(
        &mut self,
        rows: &[usize],
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<(Vec<f32>, Vec<i64>)>;
}

impl HeadFeatures for &FeatureSet {
    async fn gather(
        &mut self,
        rows: &[usize],
        _: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<(Vec<f32>, Vec<i64>)> {
        Ok(FeatureSet::gather(self, rows))
    }
}

/// Train a fresh head (seeded init) of `dim` inputs and `classes` outputs on `train_rows` of
/// `features`, validating on `val_rows` after each epoch. Returns the kept head, the report and
/// the kept epoch's validation predictions (of the validation rows that have features).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn train_head_on<F: HeadFeatures>(
    features: &mut F,
    dim: usize,
    classes: usize,
    train_rows: &[usize],
    val_rows: &[usize],
    spec: &PhaseSpec,
    seed: u64,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(Head, PhaseReport, Option<Predictions>)> {
    if train_rows.is_empty() {
        return Err(Error::Data(
            "no training rows left after the validation split".into(),
        ));
    }
    if classes < 2 {
        return Err(Error::Data(format!(
            "a classifier needs at least 2 classes, the data has {classes}"
        )));
    }
    let ad = device.clone().autodiff();
    let head = HeadConfig::new(dim, classes)
        .with_hidden(spec.head_hidden)
        .with_dropout(spec.head_dropout)
        .init_seeded(seed, &ad);
    let run = PhaseRun::new(spec, train_rows.len(), val_rows.len(), None, seed, &ad);
    let rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = HeadSteps {
        features,
        dim,
        val_rows,
        planned: false,
        val_ready: false,
        batch: spec.batch_size,
        ad,
        device: device.clone(),
    };
    run_epochs(
        &mut steps,
        head,
        train_rows,
        spec.epochs,
        rng,
        run,
        Checkpoints::default(),
        on_progress,
    )
    .await
}

/// The head on features.
struct HeadSteps<'a, F> {
    features: &'a mut F,
    dim: usize,
    val_rows: &'a [usize],
    planned: bool,
    val_ready: bool,
    batch: usize,
    ad: Device,
    device: Device,
}

impl<F: HeadFeatures> Steps for HeadSteps<'_, F> {
    type Model = Head;

    async fn train_epoch(
        &mut self,
        mut head: Head,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<Head> {
        if !self.planned {
            self.features.plan(order, self.val_rows);
            self.planned = true;
        }
        for batch in order.chunks(self.batch) {
            let (x, y) = self.features.gather(batch, on_progress).await?;
            if y.is_empty() {
                continue; // no image of this batch could be read
            }
            let x = Tensor::<2>::from_data(TensorData::new(x, [y.len(), self.dim]), &self.ad);
            let mut forward = |h: &Head, r| Ok(h.forward(super::run::rows(&x, r)));
            head = run.step(head, &y, epoch, &mut forward, on_progress).await?;
        }
        // After the first epoch's, the validation rows' features with their progress events
        // (a stream computes them now; validation then finds them).
        if !self.val_ready {
            self.features.gather(self.val_rows, on_progress).await?;
            self.val_ready = true;
        }
        Ok(head)
    }

    async fn validate(&mut self, head: &Head) -> Result<Option<Predictions>> {
        if self.val_rows.is_empty() {
            return Ok(None);
        }
        let (x, y) = self
            .features
            .gather(self.val_rows, &mut |_| Control::Continue)
            .await?;
        let predicted = predict(head, &x, self.dim, &self.device).await?;
        Ok(Some((y.iter().map(|&l| l as u32).collect(), predicted)))
    }
}

/// Arg-max class of each row of the features `x` (`dim` wide), evaluated in batches.
pub async fn predict(head: &Head, x: &[f32], dim: usize, device: &Device) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(x.len() / dim.max(1));
    for batch in x.chunks(1024 * dim) {
        let x = Tensor::<2>::from_data(
            TensorData::new(batch.to_vec(), [batch.len() / dim, dim]),
            device,
        );
        let predicted = head
            .forward(x)
            .argmax(1)
            .into_data_async()
            .await
            .map_err(compute)?;
        out.extend(predicted.iter::<i64>().map(|p| p as u32));
    }
    Ok(out)
}
