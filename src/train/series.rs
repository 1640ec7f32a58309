//! The series recipe (sensors, robots): split by person or device, phase 1 (the new head
//! through the frozen network), optional phase 2 (every layer, or the last N, at the lower
//! learning rate), then the kept model's metrics: accuracy, macro-F1 and the confusion matrix
//! for classes; RMSE and MAE per output (and the attitude error in degrees for orientation
//! quaternions) for values, before training and after. `series.from_scratch` trains the same
//! architecture from fresh weights instead, the baseline fine-tuning is measured against: its
//! first phase ("scratch") trains every layer at the head's settings, its second is the same.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::epochs::{Checkpoints, Steps, run_epochs};
use super::pipeline::{Resume, RunReport};
use super::recipe::{PhaseSpec, Unfreeze};
use super::run::{PhaseReport, PhaseRun, Predictions, Validation, compute};
use super::text::argmax;
use super::{Control, Progress, Recipe};
use crate::data::series::{LabelRule, Recordings, SeriesSet, split_groups};
use crate::models::series::{RegressionLoss, SeriesModel, SeriesNet, SeriesOutput};
use crate::{Error, Result};

/// Attitude error (degrees) of orientation quaternions: the angle between the predicted and
/// the true direction of gravity in the body frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttitudeError {
    /// Mean over the scored steps.
    pub mean: f64,
    /// Root mean square.
    pub rms: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// How far a regression's outputs are from the truth on the validation recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Output names.
    pub names: Vec<String>,
    /// Root mean square error of each output, in its units.
    pub rmse: Vec<f64>,
    /// Mean absolute error of each output.
    pub mae: Vec<f64>,
    /// For orientation quaternions (the `attitude` loss).
    pub attitude: Option<AttitudeError>,
    /// Values scored per output (steps after the warm-up, or windows).
    pub scored: usize,
    /// A sample of `[true, predicted]` pairs per output, evenly spread over the scored values
    /// (at most [`PLOTTED`] each): what the page's predicted-vs-true plots draw.
    #[serde(default)]
    pub points: Vec<Vec<[f32; 2]>>,
}

/// Pairs kept per output for the predicted-vs-true plots.
pub const PLOTTED: usize = 400;

impl RegressionMetrics {
    /// One number, lower is better: the attitude's mean degrees, else the mean over outputs
    /// of RMSE / the output's spread.
    pub fn error(&self, std: &[f32]) -> f64 {
        match &self.attitude {
            Some(a) => a.mean,
            None => {
                self.rmse
                    .iter()
                    .zip(std)
                    .map(|(r, s)| r / (*s as f64).max(1e-12))
                    .sum::<f64>()
                    / self.rmse.len().max(1) as f64
            }
        }
    }

    /// As text, one line per output (and the attitude).
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(a) = &self.attitude {
            out += &format!(
                "attitude error: mean {:.2} deg, rms {:.2} deg, p95 {:.2} deg ({} steps)\n",
                a.mean, a.rms, a.p95, self.scored
            );
        }
        for (i, n) in self.names.iter().enumerate() {
            out += &format!("{n}: rmse {:.4}, mae {:.4}\n", self.rmse[i], self.mae[i]);
        }
        out
    }
}

/// What is learnt.
#[derive(Debug, Clone)]
enum Task {
    Classes,
    Values {
        loss: RegressionLoss,
        per_step: bool,
        mean: Vec<f32>,
        std: Vec<f32>,
    },
}

/// Gravity's direction in the body frame of unit quaternions (w, x, y, z), body to earth:
/// the earth's z axis seen from the body.
fn gravity(q: [f32; 4]) -> [f64; 3] {
    let [w, x, y, z] = q.map(f64::from);
    let n = (w * w + x * x + y * y + z * z).sqrt().max(1e-12);
    let (w, x, y, z) = (w / n, x / n, y / n, z / n);
    [
        2.0 * (x * z - w * y),
        2.0 * (y * z + w * x),
        1.0 - 2.0 * (x * x + y * y),
    ]
}

/// Degrees between the gravity directions of two quaternions.
pub fn attitude_error_deg(predicted: [f32; 4], truth: [f32; 4]) -> f64 {
    let (a, b) = (gravity(predicted), gravity(truth));
    let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let na = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    let nb = (b[0] * b[0] + b[1] * b[1] + b[2] * b[2]).sqrt();
    (dot / (na * nb).max(1e-12))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Metrics of `predicted` against `truth`, both `[values, outputs]` in the outputs' units.
fn regression_metrics(
    names: &[String],
    predicted: &[f32],
    truth: &[f32],
    attitude: bool,
) -> RegressionMetrics {
    let k = names.len().max(1);
    let n = predicted.len() / k;
    let mut sq = vec![0.0f64; k];
    let mut ab = vec![0.0f64; k];
    for i in 0..n {
        for j in 0..k {
            let d = (predicted[i * k + j] - truth[i * k + j]) as f64;
            sq[j] += d * d;
            ab[j] += d.abs();
        }
    }
    let attitude = (attitude && k == 4).then(|| {
        let mut e: Vec<f64> = (0..n)
            .map(|i| {
                let p = [0, 1, 2, 3].map(|j| predicted[i * 4 + j]);
                let t = [0, 1, 2, 3].map(|j| truth[i * 4 + j]);
                attitude_error_deg(p, t)
            })
            .collect();
        let mean = e.iter().sum::<f64>() / n.max(1) as f64;
        let rms = (e.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64).sqrt();
        e.sort_by(f64::total_cmp);
        let p95 = e.get((n as f64 * 0.95) as usize).copied().unwrap_or(0.0);
        AttitudeError { mean, rms, p95 }
    });
    RegressionMetrics {
        names: names.to_vec(),
        rmse: sq.iter().map(|s| (s / n.max(1) as f64).sqrt()).collect(),
        mae: ab.iter().map(|s| s / n.max(1) as f64).collect(),
        attitude,
        scored: n,
        points: (0..k)
            .map(|j| {
                (0..n.min(PLOTTED))
                    .map(|s| s * n / n.min(PLOTTED))
                    .map(|i| [truth[i * k + j], predicted[i * k + j]])
                    .collect()
            })
            .collect(),
    }
}

/// Windows `rows` of `data` as the network's input `[n, channels, window]`, normalised.
pub fn inputs(
    data: &Recordings,
    rows: &[(usize, usize)],
    window: usize,
    mean: &[f32],
    std: &[f32],
    device: &Device,
) -> Tensor<3> {
    let c = data.channels.len();
    let mut values = Vec::with_capacity(rows.len() * window * c);
    for &(r, start) in rows {
        let v = &data.items[r].values[start * c..(start + window) * c];
        values.extend(
            v.iter()
                .enumerate()
                .map(|(i, x)| (x - mean[i % c]) / std[i % c]),
        );
    }
    Tensor::<3>::from_data(TensorData::new(values, [rows.len(), window, c]), device).swap_dims(1, 2)
}

/// The targets of windows `rows`: `[n, outputs, steps]` for the steps from `warmup` on (per
/// step), else the window's last sample `[n, outputs, 1]`; in the outputs' units.
fn targets(
    data: &Recordings,
    rows: &[(usize, usize)],
    window: usize,
    from: usize,
) -> (Vec<f32>, usize) {
    let k = data.targets.len();
    let steps = window - from;
    let mut out = vec![0.0; rows.len() * k * steps];
    for (i, &(r, start)) in rows.iter().enumerate() {
        let t = &data.items[r].targets;
        for s in 0..steps {
            for j in 0..k {
                out[(i * k + j) * steps + s] = t[(start + from + s) * k + j];
            }
        }
    }
    (out, steps)
}

/// The steps of a regression window scored: from the warm-up on (per step), else the last.
fn scored_from(task: &Task, window: usize, warmup: usize) -> usize {
    match task {
        Task::Values { per_step: true, .. } => warmup.min(window - 1),
        _ => window - 1,
    }
}

/// (window, stride) in samples for `model` on data at `rate` Hz.
fn windows(
    model: &SeriesModel,
    options: &crate::data::SeriesOptions,
    rate: f64,
) -> Result<(usize, usize)> {
    let window = match (model.config.input.window, options.window_s) {
        (Some(w), s) if s > 0.0 && (s * rate).round() as usize != w => {
            return Err(Error::Recipe {
                field: "series.window_s".into(),
                message: format!(
                    "{s} s is {} samples at {rate} Hz; the network takes exactly {w}",
                    (s * rate).round()
                ),
            });
        }
        (Some(w), _) => w,
        (None, s) if s > 0.0 => (s * rate).round() as usize,
        (None, _) => (4.0 * rate).round() as usize,
    };
    let stride = match options.stride_s {
        s if s > 0.0 => ((s * rate).round() as usize).max(1),
        _ => (window / 2).max(1),
    };
    Ok((window, stride))
}

/// The task `model`'s own output is.
fn own_task(model: &SeriesModel) -> Task {
    match &model.config.output {
        SeriesOutput::Classes { .. } => Task::Classes,
        output @ SeriesOutput::Values { loss, per_step, .. } => {
            let (mean, std) = output.scaling();
            Task::Values {
                loss: loss.unwrap_or(RegressionLoss::Mse),
                per_step: *per_step,
                mean,
                std,
            }
        }
    }
}

/// (window, first scored step, stride) of validation windows: per-step outputs on long windows
/// (`eval_window_s`) whose scored parts tile the recordings, else the training windows.
fn validation_windows(
    task: &Task,
    options: &crate::data::SeriesOptions,
    rate: f64,
    window: usize,
    stride: usize,
) -> (usize, usize, usize) {
    let warmup = (options.warmup_s * rate).round() as usize;
    let (val_window, val_warmup) = match task {
        Task::Values { per_step: true, .. } if options.eval_window_s > 0.0 => (
            ((options.eval_window_s * rate).round() as usize).max(window),
            (options.eval_warmup_s * rate).round() as usize,
        ),
        _ => (window, warmup),
    };
    let from = scored_from(task, val_window, val_warmup);
    let val_stride = match task {
        Task::Values { per_step: true, .. } => (val_window - from).max(1),
        _ => stride,
    };
    (val_window, from, val_stride)
}

/// What a model gives on recordings it did not train on.
#[derive(Debug, Clone)]
pub struct SeriesEvaluation {
    /// Classifiers: (truth, predicted) of every labelled window.
    pub predictions: Option<Predictions>,
    /// Regressions: the errors over every recording (validation windows).
    pub regression: Option<RegressionMetrics>,
    /// Recordings too short for one window.
    pub skipped: Vec<(String, String)>,
}

/// Evaluate `model` on every recording of `data` (read for the model: its channels and rate,
/// the label column of a classifier whose classes `data.classes` are, or its targets), cut as
/// `options` say.
pub async fn evaluate_series(
    model: &SeriesModel,
    data: &Recordings,
    options: &crate::data::SeriesOptions,
    device: &Device,
) -> Result<SeriesEvaluation> {
    let rate = data.rate_hz;
    let (window, stride) = windows(model, options, rate)?;
    let task = own_task(model);
    let rule = matches!(task, Task::Classes).then_some(options.label_rule);
    let (val_window, val_from, val_stride) =
        validation_windows(&task, options, rate, window, stride);
    let set = SeriesSet::cut(data, val_window, val_stride, rule);
    let mut steps = SeriesSteps {
        data,
        train: Vec::new(),
        train_labels: Vec::new(),
        val: set.rows.clone(),
        val_labels: set.labels.clone(),
        window,
        from: val_from,
        val_window,
        val_from,
        task: task.clone(),
        mean: model.config.input.mean.clone(),
        std: model.config.input.std.clone(),
        names: data.targets.clone(),
        batch: 64,
        device: device.clone(),
        ad: device.clone(),
        last: None,
    };
    let predictions = match steps.judge(&model.net).await? {
        Validation::Classes(p) => Some(p),
        _ => None,
    };
    Ok(SeriesEvaluation {
        predictions,
        regression: steps.last.take(),
        skipped: set.skipped,
    })
}

/// Fine-tune `model` on `data` per `recipe` (the recordings were read with the model's rate
/// and the recipe's channels). `split` gives (train, validation) recordings; else the
/// recipe's `val_fraction` of the groups (persons, devices) is held out, whole.
pub async fn finetune_series(
    model: SeriesModel,
    data: &Recordings,
    split: Option<(Vec<usize>, Vec<usize>)>,
    recipe: &Recipe,
    resume: Resume,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(SeriesModel, RunReport)> {
    recipe.validate()?;
    let options = &recipe.series;
    let rate = data.rate_hz;
    let (window, stride) = windows(&model, options, rate)?;
    let warmup = (options.warmup_s * rate).round() as usize;

    // Recordings: split by group.
    let (train_recs, val_recs) = match split {
        Some(s) => s,
        None => {
            let (train_g, val_g) = split_groups(&data.groups(), recipe.val_fraction, recipe.seed);
            let of = |g: &[String]| -> Vec<usize> {
                (0..data.items.len())
                    .filter(|&i| g.contains(&data.items[i].group))
                    .collect()
            };
            (of(&train_g), of(&val_g))
        }
    };
    if train_recs.is_empty() {
        return Err(Error::Data(
            "no training recordings left after the split".into(),
        ));
    }

    // The model for this data: its channels, its output, or fresh weights.
    let stats = data.channel_stats(&train_recs);
    let classes = data.classes.clone();
    let (task, output) = if classes.is_empty() {
        if data.targets.is_empty() {
            return Err(Error::Data(
                "the recordings have neither a label column nor target columns".into(),
            ));
        }
        let own = match &model.config.output {
            SeriesOutput::Values { names, .. } if *names == data.targets => {
                Some(model.config.output.clone())
            }
            _ => None,
        };
        let output = own.unwrap_or_else(|| {
            let t = data.target_stats(&train_recs);
            SeriesOutput::Values {
                names: data.targets.clone(),
                mean: t.iter().map(|s| s.0).collect(),
                std: t.iter().map(|s| s.1).collect(),
                per_step: model.config.per_step(),
                loss: Some(RegressionLoss::Mse),
            }
        });
        let (mean, std) = output.scaling();
        let SeriesOutput::Values { loss, per_step, .. } = &output else {
            unreachable!()
        };
        (
            Task::Values {
                loss: loss.unwrap_or(RegressionLoss::Mse),
                per_step: *per_step,
                mean,
                std,
            },
            output,
        )
    } else {
        if model.config.per_step() {
            return Err(Error::Data(
                "this network gives a value per step; it cannot classify windows (the data \
                 has a label column)"
                    .into(),
            ));
        }
        (
            Task::Classes,
            SeriesOutput::Classes {
                labels: classes.clone(),
                activation: None,
            },
        )
    };
    let model = if options.from_scratch {
        let mut fresh = model.reinitialised(recipe.seed, device);
        fresh.config.input.mean = vec![0.0; fresh.config.input.channels.len()];
        fresh.config.input.std = vec![1.0; fresh.config.input.channels.len()];
        let own: Vec<(f32, f32)> = fresh
            .config
            .input
            .channels
            .iter()
            .map(|c| {
                data.channels
                    .iter()
                    .position(|d| d == c)
                    .map_or((0.0, 1.0), |i| stats[i])
            })
            .collect();
        fresh.config.input.mean = own.iter().map(|s| s.0).collect();
        fresh.config.input.std = own.iter().map(|s| s.1).collect();
        fresh
    } else {
        model
    };
    let model = model
        .with_channels(&data.channels, &stats, device)?
        .with_output(output, recipe.seed, device);

    // Windows.
    let rule = matches!(task, Task::Classes).then_some(options.label_rule);
    let train_set = SeriesSet::cut(data, window, stride, rule);
    let (val_window, val_from, val_stride) =
        validation_windows(&task, options, rate, window, stride);
    let val_set = SeriesSet::cut(data, val_window, val_stride, rule);
    let train: Vec<(usize, usize)> = train_set
        .rows_of(&train_recs)
        .iter()
        .map(|&i| train_set.rows[i])
        .collect();
    let train_labels: Vec<u32> = if rule.is_some() {
        train_set
            .rows_of(&train_recs)
            .iter()
            .map(|&i| train_set.labels[i])
            .collect()
    } else {
        Vec::new()
    };
    let val_idx = val_set.rows_of(&val_recs);
    let val: Vec<(usize, usize)> = val_idx.iter().map(|&i| val_set.rows[i]).collect();
    let val_labels: Vec<u32> = if rule.is_some() {
        val_idx.iter().map(|&i| val_set.labels[i]).collect()
    } else {
        Vec::new()
    };
    if train.is_empty() {
        return Err(Error::Data(format!(
            "no training windows of {window} samples ({:.2} s) in the training recordings{}",
            window as f64 / rate,
            if rule == Some(LabelRule::All) {
                " with one label throughout"
            } else {
                ""
            }
        )));
    }
    let name = model.config.name.clone().unwrap_or_else(|| "series".into());
    let mut skipped = data.skipped.clone();
    skipped.extend(train_set.skipped.iter().cloned());
    // A run's second call (after its head phase) keeps the first call's "before".
    let before = resume
        .prior
        .as_ref()
        .and_then(|p| p.regression_before.clone());
    let mut report = RunReport::start(
        classes.clone(),
        format!(
            "{name} ({} layers, {window}-sample windows at {rate} Hz{})",
            model.config.layers.len(),
            if options.from_scratch {
                ", from scratch"
            } else {
                ""
            }
        ),
        (train.len(), val.len()),
        skipped,
        resume.prior,
    );
    report.regression_before = before;

    let mut steps = SeriesSteps {
        data,
        train_labels: train_labels.clone(),
        train: train.clone(),
        val: val.clone(),
        val_labels: val_labels.clone(),
        window,
        from: scored_from(&task, window, warmup),
        val_window,
        val_from,
        task: task.clone(),
        mean: model.config.input.mean.clone(),
        std: model.config.input.std.clone(),
        names: data.targets.clone(),
        batch: 64,
        device: device.clone(),
        ad: device.clone().autodiff(),
        last: None,
    };
    if let Task::Values { .. } = task
        && !val.is_empty()
        && !options.from_scratch
        && report.regression_before.is_none()
    {
        steps.judge(&model.net).await?;
        report.regression_before = steps.last.take();
    }

    let rows: Vec<usize> = (0..train.len()).collect();
    let mut model = model;
    let mut predicted: Option<Predictions> = None;
    // From scratch, the first phase trains every layer (at the head's settings) instead of the
    // head alone; the second is the same.
    let mut phases = recipe.phase_plan(resume.checkpoints);
    if options.from_scratch && recipe.head.epochs > 0 {
        let (spec, unfreeze, _) = &mut phases[0];
        spec.name = "scratch";
        spec.backbone_lr = spec.lr;
        *unfreeze = Some(Unfreeze::All);
    }
    for (spec, unfreeze, checkpoints) in phases {
        if report.diverged().is_some() {
            break;
        }
        steps.batch = spec.batch_size;
        let (tuned, phase, p) = train_phase(
            model,
            &mut steps,
            &rows,
            &spec,
            unfreeze,
            recipe.seed,
            device,
            checkpoints,
            on_progress,
        )
        .await?;
        report.phases.push(phase);
        model = tuned;
        predicted = p;
    }
    match task {
        Task::Classes => {
            let origins: Vec<String> = val
                .iter()
                .map(|&(r, s)| format!("{} @ {:.2} s", data.items[r].name, s as f64 / rate))
                .collect();
            let idx: Vec<usize> = (0..val.len()).collect();
            report.evaluated(&idx, predicted, |i| (origins[i].clone(), None));
        }
        Task::Values { .. } => {
            if !val.is_empty() {
                steps.judge(&model.net).await?;
                report.regression = steps.last.take();
            }
        }
    }
    Ok((model, report))
}

/// One phase: the head alone through the frozen network (`unfreeze` None) or more.
#[allow(clippy::too_many_arguments)]
async fn train_phase(
    model: SeriesModel,
    steps: &mut SeriesSteps<'_>,
    rows: &[usize],
    spec: &PhaseSpec,
    unfreeze: Option<Unfreeze>,
    seed: u64,
    device: &Device,
    checkpoints: Checkpoints,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(SeriesModel, PhaseReport, Option<Predictions>)> {
    let ad = device.clone().autodiff();
    // With adapters, they and the head train at the phase's `lr`.
    let (net, head_group) = match (&spec.lora, unfreeze) {
        (Some(options), Some(_)) => (model.trainable_lora(options, seed, &ad)?.0, None),
        _ => {
            let (net, head) = model.trainable(unfreeze, &ad)?;
            (net, Some(head))
        }
    };
    let run = PhaseRun::new(spec, rows.len(), steps.val.len(), head_group, seed, &ad);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(5);
    steps.ad = ad;
    let (net, report, predictions) = run_epochs(
        steps,
        net,
        rows,
        spec.epochs,
        rng,
        run,
        checkpoints,
        on_progress,
    )
    .await?;
    Ok((SeriesModel { net, ..model }, report, predictions))
}

/// Windows through the network.
struct SeriesSteps<'a> {
    data: &'a Recordings,
    train: Vec<(usize, usize)>,
    train_labels: Vec<u32>,
    val: Vec<(usize, usize)>,
    val_labels: Vec<u32>,
    window: usize,
    /// First scored step of a window.
    from: usize,
    /// Samples per validation window.
    val_window: usize,
    /// First scored step of a validation window.
    val_from: usize,
    task: Task,
    mean: Vec<f32>,
    std: Vec<f32>,
    names: Vec<String>,
    batch: usize,
    /// The device validation batches are made on.
    device: Device,
    /// The autodiff device training batches are made on.
    ad: Device,
    /// The last judged metrics (regressions).
    last: Option<RegressionMetrics>,
}

impl SeriesSteps<'_> {
    /// The loss of windows `rows` (mean over them).
    fn loss(&self, net: &SeriesNet, rows: &[(usize, usize)], labels: &[u32]) -> Result<Tensor<1>> {
        let x = inputs(
            self.data,
            rows,
            self.window,
            &self.mean,
            &self.std,
            &self.ad,
        );
        let out = net.forward(x);
        match &self.task {
            Task::Classes => {
                let logits = out.window();
                let y: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
                let y = Tensor::<1, Int>::from_data(TensorData::new(y, [rows.len()]), &self.ad);
                Ok(burn::nn::loss::CrossEntropyLossConfig::new()
                    .init(&self.ad)
                    .forward(logits, y))
            }
            Task::Values {
                loss, mean, std, ..
            } => {
                let (t, steps) = targets(self.data, rows, self.window, self.from);
                let k = mean.len();
                let out = out.steps();
                let [n, _, time] = out.dims();
                let out = out.slice([0..n, 0..k, time - steps..time]);
                match loss {
                    RegressionLoss::Attitude => {
                        let g: Vec<f32> = (0..n * steps)
                            .flat_map(|i| {
                                let (b, s) = (i / steps, i % steps);
                                let q = [0, 1, 2, 3].map(|j| t[(b * 4 + j) * steps + s]);
                                gravity(q).map(|v| v as f32)
                            })
                            .collect();
                        // [n, steps, 3] -> [n, 3, steps]
                        let truth =
                            Tensor::<3>::from_data(TensorData::new(g, [n, steps, 3]), &self.ad)
                                .swap_dims(1, 2);
                        let part = |j: usize| out.clone().slice([0..n, j..j + 1, 0..steps]);
                        let (w, x, y, z) = (part(0), part(1), part(2), part(3));
                        let gx = (x.clone() * z.clone() - w.clone() * y.clone()).mul_scalar(2.0);
                        let gy = (y.clone() * z + w * x.clone()).mul_scalar(2.0);
                        let gz = (x.clone() * x + y.clone() * y)
                            .mul_scalar(-2.0)
                            .add_scalar(1.0);
                        let pred = Tensor::cat(vec![gx, gy, gz], 1);
                        Ok((pred - truth).square().sum_dim(1).mean())
                    }
                    RegressionLoss::Mse | RegressionLoss::Huber => {
                        let normed: Vec<f32> = t
                            .iter()
                            .enumerate()
                            .map(|(i, v)| {
                                let j = (i / steps) % k;
                                (v - mean[j]) / std[j]
                            })
                            .collect();
                        let truth = Tensor::<3>::from_data(
                            TensorData::new(normed, [n, k, steps]),
                            &self.ad,
                        );
                        let d = out - truth;
                        Ok(match loss {
                            RegressionLoss::Huber => {
                                let a = d.abs();
                                let c = a.clone().clamp_max(1.0);
                                (c.clone().square().mul_scalar(0.5) + a - c).mean()
                            }
                            _ => d.square().mean(),
                        })
                    }
                }
            }
        }
    }

    /// Outputs of windows `rows` (eval mode): `[n, outputs, scored steps]` in the outputs'
    /// units, read back.
    async fn outputs(&self, net: &SeriesNet, rows: &[(usize, usize)]) -> Result<Vec<f32>> {
        let Task::Values { mean, std, .. } = &self.task else {
            unreachable!("regressions only")
        };
        let steps = self.val_window - self.val_from;
        let k = mean.len();
        let x = inputs(
            self.data,
            rows,
            self.val_window,
            &self.mean,
            &self.std,
            &self.device,
        );
        let out = net.forward(x).steps();
        let [n, _, time] = out.dims();
        let out = out.slice([0..n, 0..k, time - steps..time]);
        let data = out.into_data_async().await.map_err(compute)?;
        let v = data.as_slice::<f32>().map_err(compute)?;
        Ok(v.iter()
            .enumerate()
            .map(|(i, x)| {
                let j = (i / steps) % k;
                x * std[j] + mean[j]
            })
            .collect())
    }
}

/// `[n, k, steps]` to `[n * steps, k]`.
fn by_value(x: &[f32], k: usize, steps: usize) -> Vec<f32> {
    let n = x.len() / (k * steps).max(1);
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for j in 0..k {
            for s in 0..steps {
                out[(b * steps + s) * k + j] = x[(b * k + j) * steps + s];
            }
        }
    }
    out
}

impl Steps for SeriesSteps<'_> {
    type Model = SeriesNet;

    async fn train_epoch(
        &mut self,
        mut net: SeriesNet,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<SeriesNet> {
        for chunk in order.chunks(self.batch.max(1)) {
            let rows: Vec<(usize, usize)> = chunk.iter().map(|&i| self.train[i]).collect();
            let labels: Vec<u32> = if self.train_labels.is_empty() {
                Vec::new()
            } else {
                chunk.iter().map(|&i| self.train_labels[i]).collect()
            };
            let this = &*self;
            let mut loss = |n: &SeriesNet, r: std::ops::Range<usize>| {
                let l = if labels.is_empty() {
                    &[][..]
                } else {
                    &labels[r.clone()]
                };
                this.loss(n, &rows[r], l)
            };
            net = run
                .step_loss(net, rows.len(), epoch, &mut loss, on_progress)
                .await?;
        }
        Ok(net)
    }

    async fn validate(&mut self, net: &SeriesNet) -> Result<Option<Predictions>> {
        if self.val.is_empty() || !matches!(self.task, Task::Classes) {
            return Ok(None);
        }
        let mut predicted = Vec::with_capacity(self.val.len());
        for chunk in self.val.chunks(self.batch.max(1)) {
            let x = inputs(
                self.data,
                chunk,
                self.window,
                &self.mean,
                &self.std,
                &self.device,
            );
            let probs = super::run::probabilities(net.forward(x).window()).await?;
            predicted.extend(argmax(&probs));
        }
        Ok(Some((self.val_labels.clone(), predicted)))
    }

    async fn judge(&mut self, net: &SeriesNet) -> Result<Validation> {
        let Task::Values { loss, std, .. } = self.task.clone() else {
            return Ok(match self.validate(net).await? {
                Some(p) => Validation::Classes(p),
                None => Validation::None,
            });
        };
        if self.val.is_empty() {
            return Ok(Validation::None);
        }
        let k = std.len();
        let steps = self.val_window - self.val_from;
        let (mut predicted, mut truth) = (Vec::new(), Vec::new());
        for chunk in self.val.chunks(self.batch.max(1)) {
            let out = self.outputs(net, chunk).await?;
            predicted.extend(by_value(&out, k, steps));
            let (t, _) = targets(self.data, chunk, self.val_window, self.val_from);
            truth.extend(by_value(&t, k, steps));
        }
        let m = regression_metrics(
            &self.names,
            &predicted,
            &truth,
            loss == RegressionLoss::Attitude,
        );
        let error = m.error(&std);
        self.last = Some(m);
        Ok(Validation::Error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attitude_error_ignores_heading() {
        let yaw = |deg: f32| {
            let h = deg.to_radians() / 2.0;
            [h.cos(), 0.0, 0.0, h.sin()]
        };
        let roll = |deg: f32| {
            let h = deg.to_radians() / 2.0;
            [h.cos(), h.sin(), 0.0, 0.0]
        };
        assert!(attitude_error_deg(yaw(0.0), yaw(90.0)) < 1e-6);
        assert!((attitude_error_deg(roll(0.0), roll(10.0)) - 10.0).abs() < 1e-4);
        // -q is the same orientation.
        let q = roll(30.0);
        assert!(attitude_error_deg(q, q.map(|v| -v)) < 1e-6);
    }
}

/// What a series model says about one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeriesPrediction {
    /// A classifier: the class probabilities of each window (half a window apart), by its
    /// start (s).
    Classes {
        /// The recording (or part).
        name: String,
        /// Class names.
        labels: Vec<String>,
        /// (start in seconds, probabilities in the model's class order).
        windows: Vec<(f64, Vec<f32>)>,
    },
    /// Values: the outputs at every step (per-step networks) or of each window.
    Values {
        /// The recording (or part).
        name: String,
        /// Output names.
        names: Vec<String>,
        /// Seconds between two rows of `values`.
        step_s: f64,
        /// One row of outputs per step (or window), in the outputs' units.
        values: Vec<Vec<f32>>,
    },
}

/// `model`'s predictions on every recording of `data` (read for the model).
pub async fn predict_series(
    model: &SeriesModel,
    data: &Recordings,
    device: &Device,
) -> Result<Vec<SeriesPrediction>> {
    let rate = data.rate_hz;
    let options = crate::data::SeriesOptions::default();
    let (window, _) = windows(model, &options, rate)?;
    let (mean, std) = (&model.config.input.mean, &model.config.input.std);
    let c = data.channels.len();
    let mut out = Vec::new();
    for rec in &data.items {
        let n = rec.len(c);
        match &model.config.output {
            SeriesOutput::Classes { .. } => {
                if n < window {
                    return Err(Error::Data(format!(
                        "{}: {n} samples, shorter than one window of {window} ({:.2} s)",
                        rec.name,
                        window as f64 / rate
                    )));
                }
                let r = data
                    .items
                    .iter()
                    .position(|x| std::ptr::eq(x, rec))
                    .unwrap_or(0);
                let stride = (window / 2).max(1);
                let starts: Vec<usize> = (0..=(n - window) / stride).map(|i| i * stride).collect();
                let mut windows = Vec::new();
                for chunk in starts.chunks(64) {
                    let rows: Vec<(usize, usize)> = chunk.iter().map(|&s| (r, s)).collect();
                    let x = inputs(data, &rows, window, mean, std, device);
                    let p = super::run::probabilities(model.net.forward(x).window()).await?;
                    windows.extend(chunk.iter().map(|&s| s as f64 / rate).zip(p));
                }
                out.push(SeriesPrediction::Classes {
                    name: rec.name.clone(),
                    labels: model.labels().unwrap_or_default().to_vec(),
                    windows,
                });
            }
            output @ SeriesOutput::Values {
                names, per_step, ..
            } => {
                let (o_mean, o_std) = output.scaling();
                let r = data
                    .items
                    .iter()
                    .position(|x| std::ptr::eq(x, rec))
                    .unwrap_or(0);
                let (rows, len, step_s) = if *per_step {
                    (vec![(r, 0)], n, 1.0 / rate)
                } else {
                    let stride = (window / 2).max(1);
                    let rows: Vec<(usize, usize)> = (0..=(n.saturating_sub(window)) / stride)
                        .map(|i| (r, i * stride))
                        .collect();
                    (rows, window, stride as f64 / rate)
                };
                if n < len.max(1) || (!*per_step && n < window) {
                    return Err(Error::Data(format!(
                        "{}: {n} samples, shorter than one window of {window}",
                        rec.name
                    )));
                }
                let x = inputs(data, &rows, len, mean, std, device);
                let y = model.net.forward(x).steps(); // [b, k, t]
                let [b, k, t] = y.dims();
                let y = y.swap_dims(1, 2).into_data_async().await.map_err(compute)?;
                let v = y.as_slice::<f32>().map_err(compute)?;
                let values: Vec<Vec<f32>> = if *per_step {
                    (0..t)
                        .map(|s| {
                            (0..k)
                                .map(|j| v[s * k + j] * o_std[j] + o_mean[j])
                                .collect()
                        })
                        .collect()
                } else {
                    (0..b)
                        .map(|w| {
                            (0..k)
                                .map(|j| v[(w * t + t - 1) * k + j] * o_std[j] + o_mean[j])
                                .collect()
                        })
                        .collect()
                };
                out.push(SeriesPrediction::Values {
                    name: rec.name.clone(),
                    names: names.clone(),
                    step_s,
                    values,
                });
            }
        }
    }
    Ok(out)
}
