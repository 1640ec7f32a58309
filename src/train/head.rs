//! Phase 1 on cached features: train the new head on the frozen backbone's pooled features.
//!
//! Async so the same loop runs in the browser, where every read-back from the GPU must be
//! awaited; natively it is driven by a trivial executor.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

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
    let mut head = HeadConfig::new(set.dim(), classes)
        .with_hidden(spec.head_hidden)
        .with_dropout(spec.head_dropout)
        .init_seeded(seed, &ad);
    let mut run = PhaseRun::new(spec, train_rows.len(), val_rows.len(), None, &ad);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = train_rows.to_vec();
    let truth: Vec<u32> = val_rows.iter().map(|&r| set.labels()[r]).collect();
    let mut kept = None;
    for epoch in 1..=spec.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(spec.batch_size) {
            let (x, y) = set.gather(batch);
            let x = Tensor::<2>::from_data(TensorData::new(x, [batch.len(), set.dim()]), &ad);
            let logits = head.forward(x);
            head = run.step(head, logits, &y, epoch, on_progress).await?;
        }
        let predicted = if val_rows.is_empty() {
            None
        } else {
            Some(predict(&head.valid(), set, val_rows, device).await?)
        };
        let end = run.end_epoch(epoch, truth.clone(), predicted, on_progress)?;
        if end.improved {
            kept = Some(head.valid());
        }
        if end.stop {
            break;
        }
    }
    let (report, predictions) = run.finish();
    Ok((kept.unwrap_or_else(|| head.valid()), report, predictions))
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
