//! Training on images through the backbone: phase 2 (the unfrozen blocks and the head, BatchNorm
//! statistics frozen, two learning rates), and phase 1 when it augments (the backbone frozen,
//! so its features are recomputed on each epoch's augmented images).

use burn::nn::DropoutConfig;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::epochs::{Checkpoints, Steps, run_epochs};
use super::recipe::{PhaseSpec, Unfreeze};
use super::run::{PhaseReport, PhaseRun, Predictions, compute};
use super::{Control, Progress};
use crate::data::image::Preprocess;
use crate::data::source::{ImageSource, Loader};
use crate::models::ImageModel;
use crate::{Error, Result};

/// Train `model` (on `device`, plain) on `train_rows` of `source`: with `unfreeze = None` only
/// the classifier trains. Validates on `val_rows` after each epoch and returns the kept model
/// (best validation epoch; plain device), the report and the kept epoch's predictions.
/// `checkpoints`: the epoch to take up from, and whether to deliver the state after each.
#[allow(clippy::too_many_arguments)]
pub async fn train_images(
    model: ImageModel,
    source: &dyn ImageSource,
    train_rows: &[usize],
    val_rows: &[usize],
    spec: &PhaseSpec,
    unfreeze: Option<Unfreeze>,
    seed: u64,
    pre: &Preprocess,
    device: &Device,
    skipped: &mut Vec<(String, String)>,
    checkpoints: Checkpoints,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(ImageModel, PhaseReport, Option<Predictions>)> {
    if train_rows.is_empty() {
        return Err(Error::Data("no training images".into()));
    }
    let ad = device.clone().autodiff();
    // `train()` leaves the validation state a kept (`valid()`) model carries.
    let model = model.fork(&ad).train();
    let (model, head_group) = match (&spec.lora, unfreeze) {
        // Adapters and the head at the head's rate (PEFT's one rate).
        (Some(lora), Some(_)) => (model.trainable_lora(lora, seed)?.0, None),
        _ => {
            let (model, head) = model.trainable(unfreeze)?;
            (model, unfreeze.map(|_| head))
        }
    };
    let mut run = PhaseRun::new(
        spec,
        train_rows.len(),
        val_rows.len(),
        head_group,
        seed,
        &ad,
    );
    let footprint = super::memory::Footprint::image(pre.crop as usize, model.num_params());
    run.fit_memory(footprint);
    // A stream of its own, so phase 2's order differs from phase 1's for the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(if unfreeze.is_some() { 2 } else { 1 });
    // The original architecture's dropout before the classifier (torchvision's model.train()),
    // its masks drawn from the device's generator, seeded each epoch for repeatable runs.
    let dropout = DropoutConfig::new(model.arch().dropout()).init();
    let mut steps = ImageSteps {
        source,
        val_rows,
        spec,
        seed,
        pre,
        dropout,
        ad,
        device: device.clone(),
        skipped,
    };
    run_epochs(
        &mut steps,
        model,
        train_rows,
        spec.epochs,
        rng,
        run,
        checkpoints,
        on_progress,
    )
    .await
}

/// An image model through its backbone.
struct ImageSteps<'a> {
    source: &'a dyn ImageSource,
    val_rows: &'a [usize],
    spec: &'a PhaseSpec,
    seed: u64,
    pre: &'a Preprocess,
    dropout: burn::nn::Dropout,
    ad: Device,
    device: Device,
    skipped: &'a mut Vec<(String, String)>,
}

impl Steps for ImageSteps<'_> {
    type Model = ImageModel;

    async fn train_epoch(
        &mut self,
        mut model: ImageModel,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<ImageModel> {
        let batch = self.spec.batch_size;
        let augment = self.spec.augment.then_some((self.seed, epoch));
        let side = self.pre.crop as usize;
        let mut loader = Loader::new(self.source, order, batch);
        while loader.remaining() > 0 {
            let mut b = loader.batch(batch, self.pre, augment, self.skipped).await;
            if b.rows.is_empty() {
                continue;
            }
            let x = b.tensor(side, &self.ad);
            let dropout = &self.dropout;
            let mut forward = |m: &ImageModel, r| {
                Ok(m.logits(dropout.forward(m.features(super::run::rows(&x, r)))))
            };
            model = run
                .step(model, &b.labels, epoch, &mut forward, on_progress)
                .await?;
        }
        Ok(model)
    }

    async fn validate(&mut self, model: &ImageModel) -> Result<Option<Predictions>> {
        if self.val_rows.is_empty() {
            return Ok(None);
        }
        let batch = self.spec.batch_size;
        let p = predict(
            model,
            self.source,
            self.val_rows,
            self.pre,
            batch,
            &self.device,
            self.skipped,
        );
        Ok(Some(p.await?))
    }
}

/// Labels and arg-max predictions of the readable `rows` of `source` under `model` (eval mode).
pub async fn predict(
    model: &ImageModel,
    source: &dyn ImageSource,
    rows: &[usize],
    pre: &Preprocess,
    batch: usize,
    device: &Device,
    skipped: &mut Vec<(String, String)>,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let side = pre.crop as usize;
    let model = model.folded();
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    let mut loader = Loader::new(source, rows, batch);
    while loader.remaining() > 0 {
        let mut b = loader.batch(batch.max(1), pre, None, skipped).await;
        if b.rows.is_empty() {
            continue;
        }
        let p = model
            .forward(b.tensor(side, device))
            .argmax(1)
            .into_data_async()
            .await
            .map_err(compute)?;
        predicted.extend(p.iter::<i64>().map(|v| v as u32));
        truth.extend(b.labels.iter().map(|&l| l as u32));
    }
    Ok((truth, predicted))
}
