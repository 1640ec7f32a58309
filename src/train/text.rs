//! The text recipe: split, phase 1 (the head on cached pooled sentence vectors), optional
//! phase 2 (the encoder, or its top layers, with the head, dropout as in config.json), and the
//! metrics of the kept model. The CLI and the browser both call [`finetune_text`].

use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

use super::epochs::{Checkpoints, Steps, run_epochs};
use super::pipeline::{Resume, RunReport, split_rows};
use super::recipe::{PhaseSpec, Unfreeze};
use super::run::{PhaseReport, PhaseRun, Predictions, compute};
use super::{Control, Progress, Recipe};
use crate::data::split::Split;
use crate::data::{FeatureSet, TextSet};
use crate::models::{TextClassifier, TextModel};
use crate::{Error, Result};

/// Fine-tune `model` on `set` per `recipe` (its `text` options must be the model's: load the
/// model with them). `split` gives (train rows, validation rows); else the recipe's stratified
/// split. `batch` rows at a time go through the encoder when caching features. `resume`: the
/// checkpoint's report and phase-2 state to continue from, and whether to checkpoint. Returns
/// the kept model (the best validation epoch of the last phase) and the report.
#[allow(clippy::too_many_arguments)]
pub async fn finetune_text(
    model: TextModel,
    set: &TextSet,
    split: Option<Split>,
    recipe: &Recipe,
    resume: Resume,
    batch: usize,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(TextModel, RunReport)> {
    recipe.validate()?;
    let augment = [
        ("head.augment", recipe.head.augment),
        (
            "finetune.augment",
            recipe.finetune.as_ref().is_some_and(|f| f.augment),
        ),
    ];
    if let Some((field, _)) = augment.iter().find(|(_, on)| *on) {
        return Err(Error::Recipe {
            field: (*field).into(),
            message: "augmentation is for images; turn it off for text".into(),
        });
    }
    if model.options != recipe.text {
        return Err(Error::Recipe {
            field: "text".into(),
            message: format!(
                "the model was loaded with {:?}, the recipe asks {:?}: load it with the \
                 recipe's text options",
                model.options, recipe.text
            ),
        });
    }
    let classes = set.classes.clone();
    let (train, val) = split_rows(&set.labels, classes.len(), split, recipe, "texts")?;
    let mut report = RunReport::start(
        classes.clone(),
        format!(
            "{} ({} layers, hidden {})",
            model.config.model_type,
            model.block_count(),
            model.feature_dim()
        ),
        (train.len(), val.len()),
        set.skipped.clone(),
        resume.prior,
    );
    let outputs = model.net.classifier.classes();
    super::pipeline::check_kept_head(recipe, outputs, classes.len())?;
    if recipe.head.epochs == 0 {
        let message = match &model.labels {
            None => Some(
                "0 keeps the model's own head, but this model has none (no classifier with \
                 id2label in its config.json); train a new head (head.epochs above 0)"
                    .to_string(),
            ),
            // A head from a PEFT adapter names its classes by index: the data names them.
            Some(labels)
                if *labels != classes
                    && !(labels.len() == classes.len()
                        && labels.iter().enumerate().all(|(i, l)| *l == i.to_string())) =>
            {
                Some(format!(
                    "0 keeps the model's own head, whose classes {labels:?} are not the data's \
                 {classes:?}"
                ))
            }
            Some(_) => None,
        };
        if let Some(message) = message {
            return Err(Error::Recipe {
                field: "head.epochs".into(),
                message,
            });
        }
    }

    // Phase 1: pooled vectors of every row once, then the head on them (unless the recipe
    // keeps the model's own head).
    let (mut model, mut predicted) = if recipe.head.epochs == 0 {
        (model, None)
    } else {
        let all: Vec<usize> = (0..set.len()).collect();
        let (cache, truncated, seconds) =
            extract(&model, set, &all, batch, device, on_progress).await?;
        report.truncated = truncated;
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

    // Phase 2: the encoder (all layers or the top ones) and the head.
    if let Some(finetune) = recipe
        .finetune
        .as_ref()
        .filter(|_| report.diverged().is_none())
    {
        let (tuned, phase, p) = train_text(
            model,
            set,
            &train,
            &val,
            &recipe.phase_spec(finetune.spec()),
            finetune.unfreeze,
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
    report.evaluated(&val, predicted, |row| {
        (set.origins[row].clone(), Some(set.texts[row].clone()))
    });
    Ok((model, report))
}

/// Pooled vectors of `rows` of `set` under `model` (eval mode), `batch` rows at a time in
/// order of length (less padding). Returns the set (row i = `rows[i]`), the rows cut at the
/// maximum length, and the seconds taken.
pub async fn extract(
    model: &TextModel,
    set: &TextSet,
    rows: &[usize],
    batch: usize,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(FeatureSet, usize, f64)> {
    let start = Instant::now();
    let dim = model.feature_dim();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| set.texts[rows[i]].len());
    let mut features = vec![0.0f32; rows.len() * dim];
    let mut truncated = 0;
    let mut meter = super::progress::Meter::features(rows.len(), on_progress)?;
    for chunk in order.chunks(batch.max(1)) {
        let texts: Vec<&str> = chunk.iter().map(|&i| set.texts[rows[i]].as_str()).collect();
        let tokens = model.tokenizer.encode(&texts)?;
        truncated += tokens.truncated;
        let pooled = model.net.features(&tokens, device)?;
        let data = pooled.into_data_async().await.map_err(compute)?;
        let values = data.as_slice::<f32>().map_err(compute)?;
        for (k, &i) in chunk.iter().enumerate() {
            features[i * dim..(i + 1) * dim].copy_from_slice(&values[k * dim..(k + 1) * dim]);
        }
        meter.done(chunk.len(), on_progress)?;
    }
    let labels = rows.iter().map(|&r| set.labels[r]).collect();
    let cache = FeatureSet::new(dim, set.classes.clone(), features, labels)?;
    Ok((cache, truncated, start.elapsed().as_secs_f64()))
}

/// Phase 2 on text: `model` (plain device) trains on `train_rows` with dropout on, the head at
/// `spec.lr` and the unfrozen encoder layers at `spec.backbone_lr`. Returns the kept model
/// (best validation epoch), the report and that epoch's validation predictions.
#[allow(clippy::too_many_arguments)]
pub async fn train_text(
    model: TextModel,
    set: &TextSet,
    train_rows: &[usize],
    val_rows: &[usize],
    spec: &PhaseSpec,
    unfreeze: Unfreeze,
    seed: u64,
    device: &Device,
    checkpoints: Checkpoints,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(TextModel, PhaseReport, Option<Predictions>)> {
    let ad = device.clone().autodiff();
    // With adapters, they and the head train at the head's rate (PEFT's one rate).
    let (net, head_group) = match &spec.lora {
        Some(lora) => (model.trainable_lora(lora, seed, &ad)?.0, None),
        None => {
            let (net, head) = model.trainable(Some(unfreeze), &ad)?;
            (net, Some(head))
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
    let footprint = super::memory::Footprint::text(
        model.feature_dim(),
        model.block_count(),
        model.options.max_length,
        net.num_params(),
    );
    run.fit_memory(footprint);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    // Dropout masks come from the device's generator, seeded each epoch for repeatable runs.
    let mut steps = TextSteps {
        set,
        tokenizer: &model.tokenizer,
        val_rows,
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
    Ok((TextModel { net, ..model }, report, predictions))
}

/// A text encoder with its head.
struct TextSteps<'a> {
    set: &'a TextSet,
    tokenizer: &'a crate::data::TextTokenizer,
    val_rows: &'a [usize],
    batch: usize,
    ad: Device,
    device: Device,
}

impl Steps for TextSteps<'_> {
    type Model = TextClassifier;

    async fn train_epoch(
        &mut self,
        mut net: TextClassifier,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<TextClassifier> {
        for chunk in order.chunks(self.batch) {
            let texts: Vec<&str> = chunk.iter().map(|&r| self.set.texts[r].as_str()).collect();
            let labels: Vec<i64> = chunk.iter().map(|&r| self.set.labels[r] as i64).collect();
            let (tokenizer, ad) = (self.tokenizer, &self.ad);
            let mut forward = |n: &TextClassifier, r: std::ops::Range<usize>| {
                n.forward(&tokenizer.encode(&texts[r])?, ad)
            };
            net = run
                .step(net, &labels, epoch, &mut forward, on_progress)
                .await?;
        }
        Ok(net)
    }

    async fn validate(&mut self, net: &TextClassifier) -> Result<Option<Predictions>> {
        if self.val_rows.is_empty() {
            return Ok(None);
        }
        let texts: Vec<&str> = self
            .val_rows
            .iter()
            .map(|&r| self.set.texts[r].as_str())
            .collect();
        let p = predict(net, self.tokenizer, &texts, self.batch, &self.device).await?;
        let truth = self.val_rows.iter().map(|&r| self.set.labels[r]).collect();
        Ok(Some((truth, argmax(&p))))
    }
}

/// Class probabilities of each text under `net` (eval mode), `batch` texts at a time.
pub async fn predict(
    net: &TextClassifier,
    tokenizer: &crate::data::TextTokenizer,
    texts: &[&str],
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(batch.max(1)) {
        let tokens = tokenizer.encode(chunk)?;
        out.extend(super::run::probabilities(net.forward(&tokens, device)?).await?);
    }
    Ok(out)
}

/// Index of the largest value of each row.
pub fn argmax(rows: &[Vec<f32>]) -> Vec<u32> {
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i as u32)
        })
        .collect()
}
