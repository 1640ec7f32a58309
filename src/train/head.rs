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
    let head = HeadConfig::new(set.dim(), classes)
        .with_hidden(spec.head_hidden)
        .with_dropout(spec.head_dropout)
        .init_seeded(seed, &ad);
    let run = PhaseRun::new(spec, train_rows.len(), val_rows.len(), None, seed, &ad);
    let rng = ChaCha8Rng::seed_from_u64(seed);
    let truth: Vec<u32> = val_rows.iter().map(|&r| set.labels()[r]).collect();
    let mut steps = HeadSteps {
        set,
        val_rows,
        truth,
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

/// The head on cached features.
struct HeadSteps<'a> {
    set: &'a FeatureSet,
    val_rows: &'a [usize],
    truth: Vec<u32>,
    batch: usize,
    ad: Device,
    device: Device,
}

impl Steps for HeadSteps<'_> {
    type Model = Head;

    async fn train_epoch(
        &mut self,
        mut head: Head,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<Head> {
        let dim = self.set.dim();
        for batch in order.chunks(self.batch) {
            let (x, y) = self.set.gather(batch);
            let x = Tensor::<2>::from_data(TensorData::new(x, [batch.len(), dim]), &self.ad);
            let mut forward = |h: &Head, r| Ok(h.forward(super::run::rows(&x, r)));
            head = run.step(head, &y, epoch, &mut forward, on_progress).await?;
        }
        Ok(head)
    }

    async fn validate(&mut self, head: &Head) -> Result<Option<Predictions>> {
        if self.val_rows.is_empty() {
            return Ok(None);
        }
        let predicted = predict(head, self.set, self.val_rows, &self.device).await?;
        Ok(Some((self.truth.clone(), predicted)))
    }
}

/// Arg-max class of each of `rows`, evaluated in batches.
pub async fn predict(
    head: &Head,
    set: &FeatureSet,
    rows: &[usize],
    device: &Device,
) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(rows.len());
    for batch in rows.chunks(1024) {
        let (x, _) = set.gather(batch);
        let x = Tensor::<2>::from_data(TensorData::new(x, [batch.len(), set.dim()]), device);
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
