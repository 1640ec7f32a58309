//! What every phase's loop shares: the optimiser and its per-group learning rates, the
//! schedule, the loss, progress events with throughput and ETA, cancellation, the best
//! validation epoch and early stopping.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use web_time::Instant;

use super::optim::Optimizer;
use super::recipe::PhaseSpec;
use super::snapshot::{EpochState, LoopState, load_params, save_params, trainable_paths};
use super::{Control, Progress};
use crate::{Error, Result};

/// What one phase did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// "head" or "finetune".
    pub phase: String,
    /// Loss of each step, in order.
    pub losses: Vec<f32>,
    /// Validation accuracy after each epoch (empty without validation rows).
    pub val_accuracy: Vec<f64>,
    /// Regressions: the validation error after each epoch (lower is better; the loss's own
    /// measure, e.g. degrees of attitude or RMSE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_error: Vec<f64>,
    /// Epoch (from 1) whose model was kept: the best validation accuracy (or error), else the
    /// last.
    pub best_epoch: usize,
    /// True when early stopping ended the phase before its last epoch.
    pub stopped_early: bool,
    /// Rows trained on.
    pub train_rows: usize,
    /// Rows validated on.
    pub val_rows: usize,
    /// Wall time of the phase in seconds (validation included).
    pub seconds: f64,
    /// Training rows per second over the whole phase (loading and validation included).
    pub throughput: f64,
    /// Examples through the model at once (the batch's gradients are summed over them).
    #[serde(default)]
    pub micro_batch: usize,
    /// The device memory pool's largest size during the phase (GPU backends).
    #[serde(default)]
    pub peak_device_bytes: Option<u64>,
    /// Set when a non-finite loss or gradient ended the phase: what happened, which model was
    /// kept, and the learning rate to lower. Later phases do not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<String>,
}

impl PhaseReport {
    /// Mean of the first and last `n` step losses, to say whether the loss fell.
    pub fn loss_drop(&self, n: usize) -> (f32, f32) {
        let n = n.clamp(1, self.losses.len().max(1));
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len().max(1) as f32;
        (
            mean(&self.losses[..n.min(self.losses.len())]),
            mean(&self.losses[self.losses.len().saturating_sub(n)..]),
        )
    }

    /// Validation accuracy of the kept epoch.
    pub fn best_val_accuracy(&self) -> Option<f64> {
        self.val_accuracy
            .get(self.best_epoch.checked_sub(1)?)
            .copied()
    }
}

/// Validation (labels, predictions) of a kept epoch.
pub type Predictions = (Vec<u32>, Vec<u32>);

/// What validating an epoch's model gave.
pub(crate) enum Validation {
    /// No validation rows.
    None,
    /// A classifier's (labels, predictions).
    Classes(Predictions),
    /// A regression's error (lower is better).
    Error(f64),
}

pub(crate) use crate::error::compute;

/// Rows `r` of `x` (along its first axis); all of them as they are.
pub(crate) fn rows<const D: usize>(x: &Tensor<D>, r: Range<usize>) -> Tensor<D> {
    match r.start == 0 && r.end == x.dims()[0] {
        true => x.clone(),
        false => x.clone().narrow(0, r.start, r.len()),
    }
}

/// How an epoch ended.
pub(crate) struct EpochEnd {
    /// This epoch is the best so far (keep its model).
    pub improved: bool,
    /// Early stopping says stop.
    pub stop: bool,
}

/// One phase in progress.
pub(crate) struct PhaseRun {
    spec: PhaseSpec,
    head_group: Option<ParamGroup>,
    optim: Optimizer,
    loss_fn: CrossEntropyLoss,
    total_steps: usize,
    seed: u64,
    device: Device,
    start: Instant,
    /// Seconds of the phase before a resume.
    earlier_seconds: f64,
    /// Examples per micro-batch (0: the whole batch).
    micro: usize,
    /// What an example is estimated to hold, when the micro-batch follows the memory budget
    /// (see [`Self::fit_memory`]).
    footprint: Option<super::memory::Footprint>,
    /// The device's pool has measured what an example holds (or there is no pool to measure).
    measured: bool,
    /// The most the device's pool held during the last step (GPU backends).
    pub last_step_peak: Option<u64>,
    /// A pool over the budget at one example a time was reported.
    said_over_budget: bool,
    rows_done: usize,
    epoch_loss: (f32, usize),
    best: Option<f64>,
    since_best: usize,
    /// (labels, predictions) of the kept epoch on the validation rows.
    pub best_predictions: Option<Predictions>,
    /// The report so far.
    pub report: PhaseReport,
}

impl PhaseRun {
    /// `head_group`: with it, those parameters train at `spec.lr` and the rest at
    /// `spec.backbone_lr`; without it everything trains at `spec.lr`.
    pub fn new(
        spec: &PhaseSpec,
        train_rows: usize,
        val_rows: usize,
        head_group: Option<ParamGroup>,
        seed: u64,
        device: &Device,
    ) -> Self {
        let smoothing = (spec.label_smoothing > 0.0).then_some(spec.label_smoothing);
        Self {
            spec: spec.clone(),
            head_group,
            optim: Optimizer::new(spec),
            loss_fn: CrossEntropyLossConfig::new()
                .with_smoothing(smoothing)
                .init(device),
            seed,
            device: device.clone(),
            earlier_seconds: 0.0,
            micro: 0,
            footprint: None,
            measured: false,
            last_step_peak: None,
            said_over_budget: false,
            total_steps: train_rows.div_ceil(spec.batch_size) * spec.epochs,
            start: Instant::now(),
            rows_done: 0,
            epoch_loss: (0.0, 0),
            best: None,
            since_best: 0,
            best_predictions: None,
            report: PhaseReport {
                phase: spec.name.into(),
                losses: Vec::new(),
                val_accuracy: Vec::new(),
                val_error: Vec::new(),
                best_epoch: 0,
                stopped_early: false,
                train_rows,
                val_rows,
                seconds: 0.0,
                throughput: 0.0,
                micro_batch: spec.batch_size,
                peak_device_bytes: None,
                diverged: None,
            },
        }
    }

    fn learning_rates(&self) -> ModuleLearningRate {
        let f = self
            .spec
            .lr_factor(self.report.losses.len(), self.total_steps);
        match &self.head_group {
            None => (self.spec.lr * f).into(),
            Some(head) => ModuleLrScheduler::new(self.spec.backbone_lr * f)
                .with_group(head.clone(), self.spec.lr * f)
                .step(),
        }
    }

    /// Micro-batches that fit the recipe's `memory_mib` by `footprint`'s estimate and the
    /// device's largest buffer; on a GPU the phase's first micro-batch then measures what an
    /// example holds in the device's pool, and the micro-batch follows the measure (adapters'
    /// pools differ: SwiftShader's holds about twice lavapipe's for the same examples).
    pub fn fit_memory(&mut self, footprint: super::memory::Footprint) {
        let max_buffer = crate::device::max_buffer(&self.device);
        self.set_micro_batch(footprint.micro_batch(
            self.spec.batch_size,
            self.spec.memory_mib,
            max_buffer,
        ));
        self.footprint = Some(footprint);
    }

    /// Examples per micro-batch (0: the whole batch), as they are: nothing measured.
    pub fn set_micro_batch(&mut self, micro: usize) {
        self.micro = micro;
        let batch = self.spec.batch_size.max(1);
        self.report.micro_batch = if micro == 0 { batch } else { micro.min(batch) };
    }

    /// One optimiser step on `model` for a batch labelled `labels`: `forward(model, rows)`
    /// gives the logits of the batch's `rows`, a micro-batch at a time, whose gradients (each
    /// loss weighted by its share of the batch) add up to the whole batch's. The loss is read
    /// back (awaited, so the browser can deliver a cancel in between), checked and reported. A
    /// micro-batch the device cannot allocate halves the micro-batch and retries the step,
    /// with a notice. Returns the updated model.
    pub async fn step<M: Module>(
        &mut self,
        model: M,
        labels: &[i64],
        epoch: usize,
        forward: &mut dyn FnMut(&M, Range<usize>) -> Result<Tensor<2>>,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<M> {
        let loss_fn = self.loss_fn.clone();
        let mut loss = |model: &M, rows: Range<usize>| -> Result<Tensor<1>> {
            let logits = forward(model, rows.clone())?;
            let y = labels[rows.clone()].to_vec();
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [rows.len()]), &logits.device());
            Ok(loss_fn.forward(logits, y))
        };
        self.step_loss(model, labels.len(), epoch, &mut loss, on_progress)
            .await
    }

    /// One optimiser step on `model` for a batch of `n` rows whose mean loss over `rows`
    /// `loss(model, rows)` gives, a micro-batch at a time (see [`Self::step`]).
    pub async fn step_loss<M: Module>(
        &mut self,
        model: M,
        n: usize,
        epoch: usize,
        loss: &mut dyn FnMut(&M, Range<usize>) -> Result<Tensor<1>>,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<M> {
        let (value, grads, step_peak) = loop {
            let micro = if self.micro == 0 {
                n
            } else {
                self.micro.min(n)
            };
            match self.gradients(&model, n, micro, epoch, loss).await {
                Ok(done) => break done,
                Err(err) if micro > 1 && super::memory::is_allocation_failure(&err) => {
                    // (A first micro-batch's measure may have set a smaller one already.)
                    let micro = micro.min(self.report.micro_batch.max(1)).max(2);
                    self.device.memory_cleanup();
                    self.set_micro_batch(micro / 2);
                    let message = format!(
                        "{}: the device ran out of memory for {micro} examples at once ({err}); \
                         going on with micro-batches of {} (the same batch of {n} per step)",
                        self.spec.name,
                        micro / 2
                    );
                    if on_progress(&Progress::Notice { message }) == Control::Cancel {
                        return Err(Error::Cancelled);
                    }
                }
                Err(err) => return Err(err),
            }
        };
        let step = self.report.losses.len() + 1;
        let lrs = self.learning_rates();
        let model = self.optim.step(&lrs, model, grads);
        let held = step_peak.max(self.device.memory_pool_usage().map(|u| u.bytes_reserved));
        self.last_step_peak = held;
        if let Some(held) = held {
            let peak = self.report.peak_device_bytes.unwrap_or(0);
            self.report.peak_device_bytes = Some(peak.max(held));
            self.keep_to_budget(held, on_progress)?;
        }
        self.report.losses.push(value);
        self.epoch_loss.0 += value;
        self.epoch_loss.1 += 1;
        self.rows_done += n;
        let elapsed = self.seconds().max(1e-9);
        let event = Progress::Step {
            phase: self.spec.name.into(),
            epoch,
            step,
            total_steps: self.total_steps,
            loss: value,
            throughput: self.rows_done as f64 / elapsed,
            eta_s: self.total_steps.saturating_sub(step) as f64 * elapsed / step as f64,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
        Ok(model)
    }

    /// The loss and the gradients of a batch labelled `labels`, `micro` examples at a time,
    /// and on a GPU the most its pool held (read after each micro-batch's forward pass, when
    /// every activation is held, and after its backward pass). The phase's first step on a GPU
    /// measures what an example holds: its first micro-batch is a third of `micro`, its second
    /// what that measure says fits in 40% of the budget, and the second's measure sets the
    /// micro-batch (for 70% of the budget) for the rest of the step and the phase. A pool grows
    /// faster than its examples while its pages grow to larger allocations (on lavapipe 3
    /// examples held about 95 MiB each, 15 held 120; on SwiftShader a measure that planned 9
    /// for 90% of 1.5 GiB held 1,969 MiB), hence the second, larger measure and the margins.
    async fn gradients<M: Module>(
        &mut self,
        model: &M,
        n: usize,
        micro: usize,
        epoch: usize,
        loss_of: &mut dyn FnMut(&M, Range<usize>) -> Result<Tensor<1>>,
    ) -> Result<(f32, GradientsParams, Option<u64>)> {
        let mut sum = GradientsAccumulator::<M>::new();
        // Each micro-batch's loss, kept (detached) and read back once for the whole step.
        let mut losses = Vec::new();
        let probing = self.footprint.is_some() && !self.measured;
        if probing {
            match self.device.memory_pool_usage() {
                // Free pages would be taken for the examples' and not measured.
                Some(_) => self.device.memory_cleanup(),
                // Nothing to measure (the CPU): the estimate stays.
                None => self.measured = true,
            }
        }
        let before = self.pool_bytes()?;
        let mut peak = before;
        // The share of the budget each measuring micro-batch still to come plans for (popped).
        let mut shares = match before {
            Some(_) if probing => vec![0.7, 0.4],
            _ => Vec::new(),
        };
        let mut size = micro.max(1);
        let mut start = 0;
        while start < n {
            let take = match shares.len() {
                2 => size.div_ceil(3),
                _ => size,
            };
            let rows = start..(start + take).min(n);
            super::memory::simulated_failure(rows.len())?;
            let mut loss = loss_of(model, rows.clone())?;
            if rows.len() < n {
                loss = loss.mul_scalar(rows.len() as f32 / n as f32);
            }
            losses.push(loss.clone().detach());
            let forward_held = self.pool_bytes()?;
            sum.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
            let held = forward_held.max(self.pool_bytes()?);
            peak = peak.max(held);
            if let (Some(footprint), Some(before), Some(held)) = (self.footprint, before, held)
                && let Some(share) = shares.pop()
            {
                let (rows, grown) = (rows.len(), held.saturating_sub(before));
                size = footprint.measured(rows, grown, before, n, self.spec.memory_mib, share);
                self.set_micro_batch(size);
                self.measured = true;
            }
            start = rows.end;
        }
        // Each gradient's sum is read back with the losses (one read): a gradient that is not
        // finite sums to NaN or an infinity and is named before any weight takes it.
        let grads = sum.grads();
        let mut sums = GradientSums {
            grads: &grads,
            path: Vec::new(),
            found: Vec::new(),
        };
        model.visit(&mut sums);
        let (paths, sums): (Vec<String>, Vec<Tensor<1>>) = sums.found.into_iter().unzip();
        let k = losses.len();
        let parts = losses.into_iter().map(Tensor::inner).chain(sums).collect();
        let read = Tensor::cat(parts, 0)
            .into_data_async()
            .await
            .map_err(compute)?;
        let read: Vec<f32> = read.iter::<f32>().collect();
        let value: f32 = read[..k].iter().sum();
        let step = self.report.losses.len() + 1;
        let at = format!("{} epoch {epoch}, step {step}", self.spec.name);
        if !value.is_finite() {
            return Err(Error::Diverged(format!("the loss became {value} at {at}")));
        }
        if let Some((path, v)) = paths.iter().zip(&read[k..]).find(|(_, v)| !v.is_finite()) {
            return Err(Error::Diverged(format!(
                "the gradient of {path} became {v} at {at} (the loss was {value})"
            )));
        }
        Ok((value, grads, peak))
    }

    /// After a step whose pool held `reserved` bytes at most: a pool over the recipe's `memory_mib`
    /// (the first micro-batch's measure fell short) shrinks later micro-batches in proportion,
    /// with a notice, and gives back its empty pages.
    fn keep_to_budget(
        &mut self,
        reserved: u64,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<()> {
        let budget = self.spec.memory_mib as u64 * super::memory::MIB;
        let micro = self.report.micro_batch;
        if self.footprint.is_none() || reserved <= budget {
            return Ok(());
        }
        if micro <= 1 {
            // Nothing smaller to go on with: said once a phase.
            if std::mem::replace(&mut self.said_over_budget, true) {
                return Ok(());
            }
            let message = format!(
                "{}: the device's memory pool reached {} MiB with one example at a time, over \
                 memory_mib {}: one example is the least a step can take (the run goes on)",
                self.spec.name,
                reserved / super::memory::MIB,
                self.spec.memory_mib
            );
            return match on_progress(&Progress::Notice { message }) {
                Control::Cancel => Err(Error::Cancelled),
                Control::Continue => Ok(()),
            };
        }
        let smaller = ((micro as u64 * budget / reserved) as usize).clamp(1, micro - 1);
        self.set_micro_batch(smaller);
        self.device.memory_cleanup();
        let message = format!(
            "{}: the device's memory pool reached {} MiB with {micro} examples at once, over \
             memory_mib {}; going on with micro-batches of {smaller} (the same batch per step)",
            self.spec.name,
            reserved / super::memory::MIB,
            self.spec.memory_mib
        );
        match on_progress(&Progress::Notice { message }) {
            Control::Cancel => Err(Error::Cancelled),
            Control::Continue => Ok(()),
        }
    }

    /// What the device's pool holds (reserved bytes) once the queued work is dispatched: `None`
    /// where the backend keeps no pool (the CPU).
    fn pool_bytes(&self) -> Result<Option<u64>> {
        let Some(_) = self.device.memory_pool_usage() else {
            return Ok(None);
        };
        self.device.flush().map_err(compute)?;
        Ok(self.device.memory_pool_usage().map(|u| u.bytes_reserved))
    }

    /// Close an epoch with its validation: accuracy (higher is better) or error (lower).
    pub fn end_epoch(
        &mut self,
        epoch: usize,
        validation: Validation,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<EpochEnd> {
        let (truth, predicted, error) = match validation {
            Validation::None => (Vec::new(), None, None),
            Validation::Classes((truth, predicted)) => (truth, Some(predicted), None),
            Validation::Error(e) => (Vec::new(), None, Some(e)),
        };
        let accuracy = predicted.as_ref().map(|p| {
            p.iter().zip(&truth).filter(|(a, b)| a == b).count() as f64 / truth.len().max(1) as f64
        });
        // One score, higher is better.
        let score = accuracy.or(error.map(|e| -e));
        let improved = match (score, self.best) {
            (None, _) | (Some(_), None) => true,
            (Some(a), Some(best)) => a > best,
        };
        if improved {
            self.best = score;
            self.best_predictions = predicted.map(|p| (truth, p));
            self.report.best_epoch = epoch;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        self.report.val_accuracy.extend(accuracy);
        self.report.val_error.extend(error);
        let (sum, n) = std::mem::take(&mut self.epoch_loss);
        let event = Progress::Epoch {
            phase: self.spec.name.into(),
            epoch,
            train_loss: sum / n.max(1) as f32,
            val_accuracy: accuracy,
            val_error: error,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
        let stop = self
            .spec
            .early_stopping
            .is_some_and(|patience| self.since_best >= patience)
            && epoch < self.spec.epochs;
        self.report.stopped_early = stop;
        Ok(EpochEnd { improved, stop })
    }

    /// Seconds of the phase so far (before a resume too).
    fn seconds(&self) -> f64 {
        self.earlier_seconds + self.start.elapsed().as_secs_f64()
    }

    /// Seed the device's generator (dropout masks) for `epoch`, so that a run resumed at an
    /// epoch draws what an uninterrupted one does.
    pub fn start_epoch(&self, epoch: usize) {
        let stream = (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.device.seed(self.seed ^ stream);
    }

    /// The state after `epoch` of the training `model` and the `kept` one (`None`: the kept
    /// epoch is this one), read back awaited.
    pub async fn snapshot<M: Module>(
        &self,
        epoch: usize,
        model: &M,
        kept: Option<&M>,
    ) -> Result<EpochState> {
        let paths = trainable_paths(model);
        let kept = match kept {
            Some(kept) if self.report.best_epoch != epoch => Some(save_params(kept, &paths).await?),
            _ => None,
        };
        let mut report = self.report.clone();
        report.seconds = self.seconds();
        Ok(EpochState {
            state: LoopState {
                phase: self.spec.name.into(),
                epoch,
                report,
                best: self.best,
                since_best: self.since_best,
                best_predictions: self.best_predictions.clone(),
                rows_done: self.rows_done,
            },
            model: save_params(model, &paths).await?,
            kept,
            optimizer: self.optim.save().await?,
        })
    }

    /// Take up `state` (from `snapshot` of this phase): the training model and the kept one
    /// (eval mode) from `model` (the model the phase started from, trainable).
    pub fn restore<M: Module>(&mut self, state: &EpochState, model: M) -> Result<(M, M)> {
        let loop_state = &state.state;
        let what = |n: &str| {
            format!(
                "the checkpoint's {n} of {} epoch {}",
                loop_state.phase, loop_state.epoch
            )
        };
        if loop_state.phase != self.spec.name
            || loop_state.epoch >= self.spec.epochs
            || loop_state.report.train_rows != self.report.train_rows
            || loop_state.report.val_rows != self.report.val_rows
        {
            return Err(Error::Data(format!(
                "the checkpoint is from epoch {} of the {} phase on {} training and {} validation \
                 rows; this run's {} phase has {} epochs on {} and {} rows: resume it with the \
                 recipe and data of its run",
                loop_state.epoch,
                loop_state.phase,
                loop_state.report.train_rows,
                loop_state.report.val_rows,
                self.spec.name,
                self.spec.epochs,
                self.report.train_rows,
                self.report.val_rows
            )));
        }
        let model = load_params(model, &state.model, &what("parameters"))?;
        let kept = match &state.kept {
            Some(kept) => load_params(model.clone(), kept, &what("kept parameters"))?.valid(),
            None => model.valid(),
        };
        self.optim
            .load(&state.optimizer, &self.device.clone().inner())?;
        self.report = loop_state.report.clone();
        self.earlier_seconds = loop_state.report.seconds;
        self.best = loop_state.best;
        self.since_best = loop_state.since_best;
        self.best_predictions = loop_state.best_predictions.clone();
        self.rows_done = loop_state.rows_done;
        // The micro-batch the interrupted run had come to (measured, shrunk), so that the
        // resumed steps sum their gradients in the same parts.
        if loop_state.report.micro_batch > 0 {
            self.set_micro_batch(loop_state.report.micro_batch);
            self.measured = true;
        }
        Ok((model, kept))
    }

    /// A divergence (`what` happened) ends the phase: the message says so, which model is kept
    /// (`kept_epoch`, from 1; 0: the one the phase started from) and which learning rate to
    /// lower; the report keeps it.
    pub fn diverged(&mut self, what: &str, kept_epoch: usize) -> String {
        let name = self.spec.name;
        let kept = match kept_epoch {
            0 => "the model it started from".to_string(),
            e if self.report.val_rows > 0 => format!("its best epoch so far ({e})"),
            e => format!("the model after epoch {e}"),
        };
        let (lr, backbone) = (self.spec.lr, self.spec.backbone_lr);
        let rates = match self.head_group {
            Some(_) => format!(
                "{name}.lr ({}) and {name}.backbone_lr ({}), e.g. to {} and {}",
                rate(lr),
                rate(backbone),
                rate(lr / 10.0),
                rate(backbone / 10.0)
            ),
            None => format!("{name}.lr ({}), e.g. to {}", rate(lr), rate(lr / 10.0)),
        };
        let message = format!(
            "{what}: the {name} phase stopped there and kept {kept} (any later phase is skipped). \
             The learning rate is most likely too high: lower {rates}"
        );
        self.report.diverged = Some(message.clone());
        message
    }

    /// The report, with time and throughput filled in; the device's pool gives back what the
    /// phase no longer holds.
    pub fn finish(mut self) -> (PhaseReport, Option<Predictions>) {
        self.device.memory_cleanup();
        self.report.seconds = self.seconds();
        self.report.throughput = self.rows_done as f64 / self.report.seconds.max(1e-9);
        (self.report, self.best_predictions)
    }
}

/// A learning rate as a person writes it: `1e-5`, `0.001`, `1e38`.
fn rate(lr: f64) -> String {
    if (1e-3..1e4).contains(&lr) {
        return format!("{}", (lr * 1e9).round() / 1e9);
    }
    let text = format!("{lr:.6e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exponent}")
}

/// Each gradient's sum (on the device), by parameter path.
struct GradientSums<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    found: Vec<(String, Tensor<1>)>,
}

impl ModuleVisitor for GradientSums<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.found.push((self.path.join("."), grad.sum()));
        }
    }
}

/// Softmax of `logits` `[n, k]`, read back (an awaited read) as one row of probabilities per
/// example.
pub(crate) async fn probabilities(logits: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let probs = burn::tensor::activation::softmax(logits, 1);
    let [n, k] = probs.dims();
    let data = probs.into_data_async().await.map_err(compute)?;
    let values = data.as_slice::<f32>().map_err(compute)?;
    Ok((0..n)
        .map(|i| values[i * k..(i + 1) * k].to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::error::describe_compute;

    #[test]
    fn a_buffer_the_device_cannot_allocate_is_named_with_its_size() {
        // burn's chain as `tabtune finetune --device gpu` printed it on lavapipe at batch 32.
        let chain = "An error happened during execution\nCaused by:\n  Several failures at once\n\
                     Caused by:\n  The bytes were never written (failure #400, still claiming 4 buffer(s))\n\
                     \x20 skipped `ReduceKernel`: it needed memory ManagedMemoryId { value: 1280 }, which carried the failure\n\
                     Caused by:\n  An IO error happened\nCaused by:\n  can't allocate buffer of size: 154140672\n\
                     No backtrace available";
        let message = describe_compute(chain);
        assert!(
            message.starts_with(
                "the device could not allocate a buffer of 147.0 MiB (154140672 bytes)"
            ),
            "{message}"
        );
        assert!(message.contains("smaller batch"), "{message}");
    }

    #[test]
    fn learning_rates_read_as_written() {
        assert_eq!(super::rate(1e-4 / 10.0), "1e-5");
        assert_eq!(super::rate(1e-3), "0.001");
        assert_eq!(super::rate(5e-5), "5e-5");
        assert_eq!(super::rate(1e38), "1e38");
        assert_eq!(super::rate(0.3), "0.3");
    }

    #[test]
    fn other_failures_keep_burns_whole_text() {
        let chain = "An error happened during execution\nCaused by:\n  device lost";
        assert_eq!(describe_compute(chain), chain);
    }
}
