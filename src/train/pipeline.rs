//! The whole image recipe: split, phase 1 (cached features, or augmented images through the
//! frozen backbone), optional phase 2, metrics of the kept model. The CLI and the browser both
//! call [`finetune_images`]; only where the images come from differs.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use super::run::PhaseReport;
use super::{Control, Progress, Recipe, features, head, images};
use crate::data::ImageSource;
use crate::data::split::stratified;
use crate::models::ImageModel;
use crate::{Error, Result};

/// What a run produced besides the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Class names, indexed by label.
    pub classes: Vec<String>,
    /// Architecture name.
    pub arch: String,
    /// Images in the training and validation splits (before unreadable ones were left out).
    pub train_images: usize,
    /// See `train_images`.
    pub val_images: usize,
    /// Phase 1's feature cache: (images, seconds computing features), when it was used. For
    /// images the features are computed during the head's first epoch, whose seconds in the
    /// phase's report include them.
    pub features: Option<(usize, f64)>,
    /// One report per phase that ran.
    pub phases: Vec<PhaseReport>,
    /// Metrics of the kept model on the validation images (none without validation images).
    pub metrics: Option<Metrics>,
    /// Images or rows left out, as (name or file:line, reason).
    pub skipped: Vec<(String, String)>,
    /// Text only: inputs cut at the recipe's `text.max_length`.
    #[serde(default)]
    pub truncated: usize,
    /// Validation examples the kept model got wrong (at most [`MAX_MISSES`]).
    #[serde(default)]
    pub misclassified: Vec<Miss>,
    /// Where a resumed run took up again: after which phase of the checkpoint it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_after: Option<String>,
    /// Regressions: the kept model's errors on the validation recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<super::series::RegressionMetrics>,
    /// Regressions: the model's errors there before training (the pre-trained model's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression_before: Option<super::series::RegressionMetrics>,
    /// Transcription: the kept model's word and character error rates on the validation clips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<super::wer::ErrorRates>,
    /// Transcription: the model's error rates there before training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_before: Option<super::wer::ErrorRates>,
    /// True in an exported copy that left the dataset's examples out (see
    /// [`RunReport::without_examples`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub examples_left_out: bool,
}

/// Where a run takes up and what it keeps on the way.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The report of the phases the model already went through (a checkpoint's), continued.
    pub prior: Option<RunReport>,
    /// The fine-tuning phase's epoch checkpoints: its state to take up from, and whether to
    /// deliver its state after every epoch.
    pub checkpoints: super::Checkpoints,
}

/// A validation example the kept model got wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miss {
    /// Image name, or file:line of a text row.
    pub name: String,
    /// Text rows: the text.
    pub text: Option<String>,
    /// The true class.
    pub truth: String,
    /// The class the model chose.
    pub predicted: String,
}

/// At most this many misclassified examples are reported.
pub const MAX_MISSES: usize = 100;

impl RunReport {
    /// A run's report before its phases: its classes, architecture, split sizes and the rows
    /// left out so far, continuing `prior` (the report of the phases a checkpoint went
    /// through).
    pub(crate) fn start(
        classes: Vec<String>,
        arch: String,
        split: (usize, usize),
        skipped: Vec<(String, String)>,
        prior: Option<RunReport>,
    ) -> Self {
        let mut report = Self {
            classes,
            arch,
            train_images: split.0,
            val_images: split.1,
            features: None,
            phases: Vec::new(),
            metrics: None,
            skipped,
            truncated: 0,
            misclassified: Vec::new(),
            resumed_after: None,
            regression: None,
            regression_before: None,
            transcription: None,
            transcription_before: None,
            examples_left_out: false,
        };
        report.continue_from(prior);
        report
    }

    /// The report without anything taken from the dataset's examples: the misclassified
    /// examples (names, texts), the examples left out (names, reasons quoting them), the
    /// transcripts scored and the plotted validation values. What stays is the recipe's
    /// outcome: losses, accuracies, per-class metrics, error rates.
    pub fn without_examples(mut self) -> Self {
        self.misclassified.clear();
        self.skipped.clear();
        for rates in [&mut self.transcription, &mut self.transcription_before]
            .into_iter()
            .flatten()
        {
            rates.examples.clear();
        }
        for metrics in [&mut self.regression, &mut self.regression_before]
            .into_iter()
            .flatten()
        {
            metrics.points.clear();
        }
        self.examples_left_out = true;
        self
    }

    /// What ended the last phase when a non-finite loss or gradient did (later phases were
    /// not run).
    pub fn diverged(&self) -> Option<&str> {
        self.phases.last()?.diverged.as_deref()
    }

    /// As text: truncations, the feature cache's throughput, a line per phase, the metrics
    /// table; `unit` names the rows ("images").
    pub fn describe(&self, unit: &str) -> String {
        let mut out = String::new();
        if self.truncated > 0 {
            out += &format!(
                "truncated: {} inputs were cut at the maximum length\n",
                self.truncated
            );
        }
        if let Some((n, s)) = self.features {
            out += &format!(
                "features: {n} {unit} in {s:.1} s ({:.1} {unit}/s)\n",
                n as f64 / s
            );
        }
        for p in &self.phases {
            let score = match (
                p.best_val_accuracy(),
                p.val_error.get(p.best_epoch.max(1) - 1),
            ) {
                (Some(a), _) => format!("val accuracy {:.2}%", a * 100.0),
                (None, Some(e)) => format!("val error {e:.4}"),
                (None, None) => "val accuracy -".into(),
            };
            out += &format!(
                "{}: {} train / {} val {unit}, {} steps in {:.2} s ({:.1} {unit}/s), kept epoch {}, \
                 {score}{}\n",
                p.phase,
                p.train_rows,
                p.val_rows,
                p.losses.len(),
                p.seconds,
                p.throughput,
                p.best_epoch,
                if p.stopped_early {
                    " (stopped early)"
                } else {
                    ""
                }
            );
            if let Some(why) = &p.diverged {
                out += &format!("{} diverged: {why}\n", p.phase);
            }
        }
        if let Some(m) = &self.metrics {
            out += &m.table();
        }
        if let Some(m) = &self.regression_before {
            out += &format!("before training:\n{}", m.table());
        }
        if let Some(m) = &self.regression {
            out += &format!("after training:\n{}", m.table());
        }
        if let Some(after) = &self.transcription {
            let before = self.transcription_before.as_ref();
            let was =
                |r: Option<f64>| r.map_or(String::new(), |v| format!("{:.1}% -> ", v * 100.0));
            out += &format!(
                "word error rate {}{:.1}%, character error rate {}{:.1}% ({} validation clips)\n",
                was(before.map(|b| b.wer)),
                after.wer * 100.0,
                was(before.map(|b| b.cer)),
                after.cer * 100.0,
                after.count
            );
            out += &after.table(5);
        }
        out
    }

    /// Carry on from `prior`, the report of the phases a checkpoint already holds: its feature
    /// cache, phases, rows left out and truncations come first in this one.
    pub(crate) fn continue_from(&mut self, prior: Option<RunReport>) {
        if let Some(prior) = prior {
            self.features = prior.features;
            self.phases = prior.phases;
            self.truncated = prior.truncated;
            for item in prior.skipped {
                if !self.skipped.iter().any(|(name, _)| *name == item.0) {
                    self.skipped.push(item);
                }
            }
        }
    }

    /// Metrics and misclassified examples of the kept model from its `predictions` on the
    /// validation `rows` (in that order); `describe(row)` gives a row's name and text.
    pub(crate) fn evaluated(
        &mut self,
        rows: &[usize],
        predictions: Option<super::run::Predictions>,
        describe: impl Fn(usize) -> (String, Option<String>),
    ) {
        let Some((truth, predicted)) = predictions else {
            return;
        };
        if truth.len() == rows.len() {
            self.misclassified = rows
                .iter()
                .zip(truth.iter().zip(&predicted))
                .filter(|(_, (t, p))| t != p)
                .take(MAX_MISSES)
                .map(|(&row, (&t, &p))| {
                    let (name, text) = describe(row);
                    Miss {
                        name,
                        text,
                        truth: self.classes[t as usize].clone(),
                        predicted: self.classes[p as usize].clone(),
                    }
                })
                .collect();
        }
        self.metrics = Some(Metrics::new(&self.classes, &truth, &predicted));
    }
}

/// With `head.epochs` 0 the model keeps its own head, which must output `classes` classes.
pub(crate) fn check_kept_head(recipe: &Recipe, outputs: usize, classes: usize) -> Result<()> {
    if recipe.head.epochs == 0 && outputs != classes {
        return Err(Error::Recipe {
            field: "head.epochs".into(),
            message: format!(
                "0 keeps the model's own head, which has {outputs} outputs, but the data has \
                 {classes} classes; train a new head (head.epochs above 0)"
            ),
        });
    }
    Ok(())
}

/// The (train, validation) rows of data labelled `labels` with `classes` classes: `split` as
/// given (a validation folder or file), else the recipe's stratified split. `unit` names the
/// rows in messages.
pub(crate) fn split_rows(
    labels: &[u32],
    classes: usize,
    split: Option<crate::data::split::Split>,
    recipe: &Recipe,
    unit: &str,
) -> Result<crate::data::split::Split> {
    if classes < 2 {
        return Err(Error::Data(format!(
            "a classifier needs at least 2 classes, the data has {classes}"
        )));
    }
    let (train, val) =
        split.unwrap_or_else(|| stratified(labels, classes, recipe.val_fraction, recipe.seed));
    if train.is_empty() {
        return Err(Error::Data(format!(
            "no training {unit} left after the validation split"
        )));
    }
    Ok((train, val))
}

/// Fine-tune `model` on `source` per `recipe`: `split` gives (train rows, validation rows)
/// (a validation folder), else the recipe's stratified split is used. `feature_batch` images
/// go through the backbone at a time when caching features. `resume`: the checkpoint's report
/// and phase-2 state to continue from, and whether to checkpoint. Returns the kept model (the
/// best validation epoch of the last phase, with the new head) and the report.
#[allow(clippy::too_many_arguments)]
pub async fn finetune_images(
    model: ImageModel,
    source: &dyn ImageSource,
    split: Option<crate::data::split::Split>,
    recipe: &Recipe,
    resume: Resume,
    feature_batch: usize,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(ImageModel, RunReport)> {
    recipe.validate()?;
    if recipe.head.hidden.is_some() {
        return Err(Error::Recipe {
            field: "head.hidden".into(),
            message: "an MLP head is for text models; an image model's classifier is one \
                      Linear layer, so the export keeps the architecture's own names"
                .into(),
        });
    }
    let classes = source.classes().to_vec();
    let (train, val) = split_rows(&source.labels(), classes.len(), split, recipe, "images")?;
    let pre = model.arch().preprocess();
    let mut report = RunReport::start(
        classes.clone(),
        model.arch().name().into(),
        (train.len(), val.len()),
        Vec::new(),
        resume.prior,
    );
    check_kept_head(recipe, model.classes(), classes.len())?;

    // Phase 1: the new head, seeded, on the frozen backbone (unless the recipe keeps the
    // model's own head).
    let head_spec = recipe.phase_spec(recipe.head.spec());
    let (mut model, mut predicted, mut train, mut val) = if recipe.head.epochs == 0 {
        (model, None, train, val)
    } else if head_spec.augment {
        let head = crate::models::HeadConfig::new(model.feature_dim(), classes.len())
            .init_seeded(recipe.seed, device);
        let (model, phase, predicted) = images::train_images(
            model.with_head(head),
            source,
            &train,
            &val,
            &head_spec,
            None,
            recipe.seed,
            &pre,
            device,
            &mut report.skipped,
            Default::default(),
            on_progress,
        )
        .await?;
        report.phases.push(phase);
        (model, predicted, train, val)
    } else {
        // Features as the head's first epoch asks for them: its first step waits for its own
        // batch only. Rows in ascending order, as the epochs' shuffles and phase 2 have always
        // seen them.
        let (mut train, mut val) = (train, val);
        train.sort_unstable();
        val.sort_unstable();
        let mut stream = features::Stream::new(&model, source, &pre, feature_batch, device);
        let dim = stream.dim();
        let trained = head::train_head_on(
            &mut stream,
            dim,
            classes.len(),
            &train,
            &val,
            &head_spec,
            recipe.seed,
            device,
            on_progress,
        )
        .await;
        report.skipped.append(&mut stream.skipped);
        let copies = crate::data::source::duplicates(&train, &val, &stream.fingerprints);
        if !copies.is_empty() {
            let named: Vec<String> = copies
                .iter()
                .take(5)
                .map(|&(v, t)| format!("{} = {}", source.name(v), source.name(t)))
                .collect();
            let message = format!(
                "{} validation image(s) are the same pictures as training images ({}{}): the \
                 validation accuracy counts them as seen; remove the copies for a fair measure",
                copies.len(),
                named.join(", "),
                if copies.len() > 5 { ", ..." } else { "" }
            );
            if on_progress(&Progress::Notice { message }) == Control::Cancel {
                return Err(Error::Cancelled);
            }
        }
        let (head, phase, predicted) = trained?;
        report.features = Some(stream.extracted());
        report.phases.push(phase);
        // Unreadable images are gone from both splits.
        let (train, val) = (stream.readable(&train), stream.readable(&val));
        (model.with_head(head), predicted, train, val)
    };
    if train.is_empty() {
        return Err(Error::Data(
            "none of the training images could be read".into(),
        ));
    }

    // Phase 2: unfreeze (all or the last blocks), BatchNorm statistics frozen.
    if let Some(finetune) = recipe
        .finetune
        .as_ref()
        .filter(|_| report.diverged().is_none())
    {
        // Images that failed once are not read again.
        let bad: std::collections::HashSet<String> =
            report.skipped.iter().map(|(n, _)| n.clone()).collect();
        train.retain(|&r| !bad.contains(&source.name(r)));
        val.retain(|&r| !bad.contains(&source.name(r)));
        let (tuned, phase, p) = images::train_images(
            model,
            source,
            &train,
            &val,
            &recipe.phase_spec(finetune.spec()),
            Some(finetune.unfreeze),
            recipe.seed,
            &pre,
            device,
            &mut report.skipped,
            resume.checkpoints,
            on_progress,
        )
        .await?;
        report.phases.push(phase);
        model = tuned;
        predicted = p;
    }
    report.evaluated(&val, predicted, |row| (source.name(row), None));
    Ok((model, report))
}

/// Phase 1 on a feature cache computed in `seconds`: the recipe's head trained on the `train`
/// rows of `cache` (validated on `val`), its report and the cache's throughput added to
/// `report`. Returns the head and its kept epoch's validation predictions.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn head_on_cache(
    cache: &crate::data::FeatureSet,
    seconds: f64,
    train: &[usize],
    val: &[usize],
    recipe: &Recipe,
    report: &mut RunReport,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(crate::models::Head, Option<super::run::Predictions>)> {
    report.features = Some((cache.len(), seconds));
    let (head, phase, predicted) = head::train_head_rows(
        cache,
        train,
        val,
        &recipe.head.spec(),
        recipe.seed,
        device,
        on_progress,
    )
    .await?;
    report.phases.push(phase);
    Ok((head, predicted))
}
