//! The audio recipe: split, phase 1 (the head on cached pooled embeddings, or with
//! `head.augment` on augmented clips through the frozen network), optional phase 2 (the
//! network, or its last convolutions, with the head, on augmented clips when
//! `finetune.augment`), and the metrics of the kept model. The CLI and the browser both call
//! [`finetune_audio`].

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

use super::epochs::{Checkpoints, Steps, run_epochs};
use super::pipeline::{Resume, RunReport, split_rows};
use super::recipe::{PhaseSpec, Unfreeze};
use super::run::{PhaseReport, PhaseRun, Predictions, compute};
use super::text::argmax;
use super::{Control, Progress, Recipe};
use crate::data::FeatureSet;
use crate::data::audio::{AudioClips, AudioSet};
use crate::data::mel::{LogMel, frames};
use crate::data::source::augment_rng;
use crate::data::split::Split;
use crate::models::audio::{AudioClassifier, AudioModel, mel_batch};
use crate::{Error, Result};

/// Fine-tune `model` on `data` per `recipe`: the files are cut into windows with the recipe's
/// `audio` options (which must be the model's). `split` gives (train files, validation
/// files); else the recipe's stratified split of the files, so that the windows of one file
/// are never on both sides. `batch` windows at a time go through the network when caching
/// embeddings. Returns the kept model (the best validation epoch of the last phase) and the
/// report.
#[allow(clippy::too_many_arguments)]
pub async fn finetune_audio(
    model: AudioModel,
    data: &AudioClips,
    split: Option<Split>,
    recipe: &Recipe,
    resume: Resume,
    batch: usize,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(AudioModel, RunReport)> {
    recipe.validate()?;
    if model.options != recipe.audio {
        return Err(Error::Recipe {
            field: "audio".into(),
            message: format!(
                "the model was loaded with {:?}, the recipe asks {:?}: load it with the \
                 recipe's audio options",
                model.options, recipe.audio
            ),
        });
    }
    let set = &AudioSet::cut(data, &recipe.audio)?;
    let classes = set.classes.clone();
    let (train, val) = split_rows(&data.labels, classes.len(), split, recipe, "audio files")?;
    let (train, val) = (set.rows_of(&train), set.rows_of(&val));
    if train.is_empty() {
        return Err(Error::Data(
            "no training windows: every training file was silence".into(),
        ));
    }
    let mut report = RunReport::start(
        classes.clone(),
        format!(
            "speech_embedding ({} convolutions, {:.2} s windows)",
            model.block_count(),
            recipe.audio.window
        ),
        (train.len(), val.len()),
        set.skipped.clone(),
        resume.prior,
    );
    super::pipeline::check_kept_head(recipe, model.net.classifier.classes(), classes.len())?;
    if recipe.head.epochs == 0 && model.labels.as_deref() != Some(&classes[..]) {
        return Err(Error::Recipe {
            field: "head.epochs".into(),
            message: format!(
                "0 keeps the model's own head, whose classes {:?} are not the data's {classes:?}",
                model.labels
            ),
        });
    }

    let (mut model, mut predicted) = if recipe.head.epochs == 0 {
        (model, None)
    } else if recipe.head.augment {
        // Augmented clips through the frozen network every epoch, the head alone training.
        let (tuned, phase, p) = train_audio(
            model,
            set,
            &train,
            &val,
            &recipe.phase_spec(recipe.head.spec()),
            None,
            true,
            recipe.seed,
            device,
            Checkpoints::default(),
            on_progress,
        )
        .await?;
        report.phases.push(phase);
        (tuned, p)
    } else {
        let all: Vec<usize> = (0..set.len()).collect();
        let (cache, seconds) = extract(&model.net, set, &all, batch, device, on_progress).await?;
        let (head, predicted) = super::pipeline::head_on_cache(
            &cache,
            seconds,
            &train,
            &val,
            recipe,
            &mut report,
            device,
            on_progress,
        )
        .await?;
        (model.with_head(head), predicted)
    };

    if let Some(finetune) = recipe
        .finetune
        .as_ref()
        .filter(|_| report.diverged().is_none())
    {
        let (tuned, phase, p) = train_audio(
            model,
            set,
            &train,
            &val,
            &recipe.phase_spec(finetune.spec()),
            Some(finetune.unfreeze),
            finetune.augment,
            recipe.seed,
            device,
            resume.checkpoints,
            on_progress,
        )
        .await?;
        report.phases.push(phase);
        model = tuned;
        predicted = p;
    }
    report.evaluated(&val, predicted, |row| (set.origins[row].clone(), None));
    Ok((model, report))
}

/// Pooled embeddings of `rows` of `set` under `net` (eval mode), `batch` windows at a time.
/// Returns the set (row i = `rows[i]`) and the seconds taken.
pub async fn extract(
    net: &AudioClassifier,
    set: &AudioSet<'_>,
    rows: &[usize],
    batch: usize,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(FeatureSet, f64)> {
    let start = Instant::now();
    let front = LogMel::new();
    let dim = crate::models::audio::FEATURES;
    let mut features = Vec::with_capacity(rows.len() * dim);
    let mut meter = super::progress::Meter::features(rows.len(), on_progress)?;
    for chunk in rows.chunks(batch.max(1)) {
        let owned: Vec<_> = chunk.iter().map(|&r| set.window(r)).collect();
        let windows: Vec<&[f32]> = owned.iter().map(|w| &w[..]).collect();
        let pooled = net.features(mel_batch(&front, &windows, device));
        let data = pooled.into_data_async().await.map_err(compute)?;
        features.extend_from_slice(data.as_slice::<f32>().map_err(compute)?);
        meter.done(chunk.len(), on_progress)?;
    }
    let labels = rows.iter().map(|&r| set.labels[r]).collect();
    let cache = FeatureSet::new(dim, set.classes.clone(), features, labels)?;
    Ok((cache, start.elapsed().as_secs_f64()))
}

/// A training phase on audio: `model` trains on `train_rows` (augmented when `augment`), the
/// head at `spec.lr` and, with `unfreeze`, the network's convolutions at `spec.backbone_lr`
/// (`None`: the head alone, through the frozen network). Returns the kept model (best
/// validation epoch), the report and that epoch's validation predictions.
#[allow(clippy::too_many_arguments)]
pub async fn train_audio(
    model: AudioModel,
    set: &AudioSet<'_>,
    train_rows: &[usize],
    val_rows: &[usize],
    spec: &PhaseSpec,
    unfreeze: Option<Unfreeze>,
    augment: bool,
    seed: u64,
    device: &Device,
    checkpoints: Checkpoints,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(AudioModel, PhaseReport, Option<Predictions>)> {
    let ad = device.clone().autodiff();
    let (net, head_group) = model.trainable(unfreeze, &ad)?;
    let mut run = PhaseRun::new(
        spec,
        train_rows.len(),
        val_rows.len(),
        Some(head_group),
        seed,
        &ad,
    );
    run.fit_memory(super::memory::Footprint::audio(
        frames(model.options.window_samples()),
        net.num_params(),
    ));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(3);
    let mut steps = AudioSteps {
        set,
        front: LogMel::new(),
        val_rows,
        noise: set.noise_rows(train_rows),
        augment,
        seed,
        batch: spec.batch_size,
        ad,
        device: device.clone(),
    };
    let (net, report, predictions) = run_epochs(
        &mut steps,
        net,
        train_rows,
        spec.epochs,
        rng,
        run,
        checkpoints,
        on_progress,
    )
    .await?;
    Ok((AudioModel { net, ..model }, report, predictions))
}

/// Audio windows through the whole network.
struct AudioSteps<'a> {
    set: &'a AudioSet<'a>,
    front: LogMel,
    val_rows: &'a [usize],
    /// Training rows of the noise class (mixed into augmented clips).
    noise: Vec<usize>,
    augment: bool,
    seed: u64,
    batch: usize,
    ad: Device,
    device: Device,
}

impl Steps for AudioSteps<'_> {
    type Model = AudioClassifier;

    async fn train_epoch(
        &mut self,
        mut net: AudioClassifier,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<AudioClassifier> {
        for chunk in order.chunks(self.batch) {
            let clips: Vec<Vec<f32>> = chunk
                .iter()
                .map(|&r| {
                    if self.augment {
                        let mut rng = augment_rng(self.seed, epoch, r);
                        self.set.augmented(r, &self.noise, &mut rng)
                    } else {
                        self.set.window(r).into_owned()
                    }
                })
                .collect();
            let labels: Vec<i64> = chunk.iter().map(|&r| self.set.labels[r] as i64).collect();
            let (front, ad) = (&self.front, &self.ad);
            let mut forward = |n: &AudioClassifier, r: std::ops::Range<usize>| {
                let windows: Vec<&[f32]> = clips[r].iter().map(Vec::as_slice).collect();
                Ok(n.forward(mel_batch(front, &windows, ad)))
            };
            net = run
                .step(net, &labels, epoch, &mut forward, on_progress)
                .await?;
        }
        Ok(net)
    }

    async fn validate(&mut self, net: &AudioClassifier) -> Result<Option<Predictions>> {
        if self.val_rows.is_empty() {
            return Ok(None);
        }
        let owned: Vec<_> = self.val_rows.iter().map(|&r| self.set.window(r)).collect();
        let windows: Vec<&[f32]> = owned.iter().map(|w| &w[..]).collect();
        let p = predict(net, &self.front, &windows, self.batch, &self.device).await?;
        let truth = self.val_rows.iter().map(|&r| self.set.labels[r]).collect();
        Ok(Some((truth, argmax(&p))))
    }
}

/// Class probabilities of each window under `net` (eval mode), `batch` at a time.
pub async fn predict(
    net: &AudioClassifier,
    front: &LogMel,
    windows: &[&[f32]],
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(batch.max(1)) {
        out.extend(super::run::probabilities(net.forward(mel_batch(front, chunk, device))).await?);
    }
    Ok(out)
}
