//! Progress events the loop emits; the CLI prints them, the browser worker posts them.

use serde::{Deserialize, Serialize};

/// One event of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// A batch of images went through the frozen backbone (phase 1's feature cache).
    Features {
        /// Images processed (read or skipped) so far.
        done: usize,
        /// Images in all.
        total: usize,
        /// Images per second so far.
        throughput: f64,
        /// Seconds left at that rate.
        eta_s: f64,
    },
    /// A training step finished and its loss was read back.
    Step {
        /// Phase name ("head").
        phase: String,
        /// Epoch, from 1.
        epoch: usize,
        /// Step within the whole phase, from 1.
        step: usize,
        /// Steps in the whole phase.
        total_steps: usize,
        /// Mean loss of this step's batch.
        loss: f32,
        /// Rows per second over the phase so far.
        throughput: f64,
        /// Seconds left in the phase at that rate.
        eta_s: f64,
    },
    /// An epoch ended and was evaluated on the validation rows.
    Epoch {
        /// Phase name.
        phase: String,
        /// Epoch, from 1.
        epoch: usize,
        /// Mean training loss over the epoch.
        train_loss: f32,
        /// Validation accuracy in [0, 1]; `None` without validation rows.
        val_accuracy: Option<f64>,
        /// Regressions: the validation error (the loss's measure); `None` for classifiers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        val_error: Option<f64>,
    },
    /// Something the user should know that did not stop the run (a smaller micro-batch).
    Notice {
        /// What happened and what the run does about it.
        message: String,
    },
    /// A phase's state after an epoch, to resume from (only when asked for; the session turns
    /// it into a checkpoint, and it is never serialized).
    #[serde(skip)]
    Saved(Box<super::EpochState>),
}

impl Progress {
    /// The event as a line of text (`unit` names the rows), or `None` for a saved state.
    pub fn describe(&self, unit: &str) -> Option<String> {
        Some(match self {
            Self::Features {
                done,
                total,
                throughput,
                eta_s,
            } => {
                format!(
                    "features {done}/{total}: {throughput:.1} {unit}/s, ETA {}",
                    eta(*eta_s)
                )
            }
            Self::Step {
                phase,
                epoch,
                step,
                total_steps,
                loss,
                throughput,
                eta_s,
            } => format!(
                "{phase} {step}/{total_steps}: epoch {epoch}, loss {loss:.4}, {throughput:.1}/s, ETA {}",
                eta(*eta_s)
            ),
            Self::Epoch {
                phase,
                epoch,
                train_loss,
                val_accuracy,
                val_error,
            } => match val_error {
                Some(e) => format!("{phase} epoch {epoch}: loss {train_loss:.4}, val error {e:.4}"),
                None => {
                    let acc = val_accuracy.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
                    format!("{phase} epoch {epoch}: loss {train_loss:.4}, val accuracy {acc}")
                }
            },
            Self::Notice { message } => message.clone(),
            Self::Saved(_) => return None,
        })
    }
}

/// Seconds as "1m05s" or "2h03m"; "-" when unknown.
pub fn eta(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "-".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// What the caller answers to each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop before the next step; the run returns [`crate::Error::Cancelled`].
    Cancel,
}

/// Progress of a feature cache: a first event before the first batch (which also compiles the
/// kernels, slow on WebGPU), then one per batch with the rate so far.
pub(crate) struct Meter {
    start: web_time::Instant,
    done: usize,
    total: usize,
}

impl Meter {
    /// Started over `total` rows; sends the first event.
    pub(crate) fn features(
        total: usize,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> crate::Result<Self> {
        let meter = Self {
            start: web_time::Instant::now(),
            done: 0,
            total,
        };
        meter.send(on_progress)?;
        Ok(meter)
    }

    /// `n` more rows done.
    pub(crate) fn done(
        &mut self,
        n: usize,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> crate::Result<()> {
        self.done += n;
        self.send(on_progress)
    }

    fn send(&self, on_progress: &mut dyn FnMut(&Progress) -> Control) -> crate::Result<()> {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        let event = Progress::Features {
            done: self.done,
            total: self.total,
            throughput: self.done as f64 / elapsed,
            eta_s: if self.done == 0 {
                f64::NAN
            } else {
                (self.total - self.done) as f64 * elapsed / self.done as f64
            },
        };
        if on_progress(&event) == Control::Cancel {
            return Err(crate::Error::Cancelled);
        }
        Ok(())
    }
}
