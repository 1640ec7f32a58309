//! Fine-tuning a speech recogniser (Whisper) on transcribed clips, in the recipe's two phases:
//!
//! 1. The decoder on the frozen encoder. The encoder's states of every clip are computed once
//!    (the phase never changes them) and the decoder learns the domain's words from them:
//!    teacher-forced cross-entropy on the transcript's tokens (the prompt's
//!    `<|notimestamps|>`, the text, `<|endoftext|>`; padding not scored), label smoothing from
//!    the recipe. The decoder is what writes words, so it is where a domain's vocabulary is
//!    learned first; the encoder's acoustics are general and the costly half to train.
//! 2. With `finetune`, the encoder too (all of it, or its last N layers), every clip through
//!    the whole network, the decoder at `lr` and the encoder at `backbone_lr`.
//!
//! Every epoch is judged by the word error rate of greedy transcripts of the validation clips
//! (the kept epoch is the lowest); the report has the error rates before training and after,
//! per clip.

use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::epochs::{Steps, run_epochs};
use super::memory::Footprint;
use super::pipeline::{Resume, RunReport};
use super::run::{PhaseRun, Predictions, Validation};
use super::wer::{ErrorRates, normalise};
use super::{Control, PhaseReport, Progress, Recipe};
use crate::data::series::split_groups;
use crate::data::transcripts::Transcripts;
use crate::error::compute;
use crate::models::Unfreeze;
use crate::models::whisper::{Transcriber, Whisper};
use crate::{Error, Result};

/// Clips transcribed at once when judging.
const EVAL_BATCH: usize = 8;

/// Train `model` on `data` per `recipe`: the data's own validation clips when it has them,
/// else a seeded `val_fraction` of its sentences is held out.
pub async fn finetune_transcription(
    model: Transcriber,
    data: &Transcripts,
    recipe: &Recipe,
    resume: Resume,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<(Transcriber, RunReport)> {
    recipe.validate()?;
    let n = data.clips.len();
    let held: Vec<bool> = match &data.val {
        Some(v) => (0..n).map(|i| v.contains(&i)).collect(),
        None => {
            // By sentence: clips of the same transcript (other voices, other takes) stay on
            // one side, so no validation sentence is heard in training.
            let text: Vec<String> = data.clips.iter().map(|c| normalise(&c.text)).collect();
            let mut sentences = text.clone();
            sentences.sort();
            sentences.dedup();
            let (_, held) = split_groups(&sentences, recipe.val_fraction, recipe.seed);
            text.iter().map(|t| held.contains(t)).collect()
        }
    };
    let (val, train): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| held[i]);
    // A transcript the decoder cannot read whole is left out, named.
    let max = model.max_tokens();
    let mut tokens = Vec::with_capacity(n);
    let mut too_long = Vec::new();
    for clip in &data.clips {
        let t = model.encode(&clip.text)?;
        if t.len() > max {
            too_long.push((
                clip.name.clone(),
                format!(
                    "the transcript is {} tokens, more than the {max} the decoder reads (cut the \
                     clip and its transcript in two)",
                    t.len()
                ),
            ));
        }
        tokens.push(t);
    }
    let fits = |i: &usize| tokens[*i].len() <= max;
    let (train, val): (Vec<usize>, Vec<usize>) = (
        train.into_iter().filter(fits).collect(),
        val.into_iter().filter(fits).collect(),
    );
    if train.is_empty() {
        return Err(Error::Data("no training clips left after the split".into()));
    }
    // A run's second call (after its decoder phase) keeps the first call's "before".
    let before = resume
        .prior
        .as_ref()
        .and_then(|p| p.transcription_before.clone());
    let mut report = RunReport::start(
        Vec::new(),
        format!(
            "whisper ({} + {} layers, d_model {})",
            model.config.encoder_layers, model.config.decoder_layers, model.config.d_model
        ),
        (train.len(), val.len()),
        [data.skipped.clone(), too_long].concat(),
        resume.prior,
    );
    report.transcription_before = before;

    // Generated transcripts are cut a little beyond the longest reference (a model that
    // loops would otherwise write 445 tokens per clip, every epoch).
    let longest = val.iter().map(|&i| tokens[i].len()).max().unwrap_or(0);
    let mut steps = TranscribeSteps {
        model: &model,
        data,
        tokens,
        train,
        val,
        encoded: None,
        max_new: (longest * 2 + 10).min(model.max_tokens()),
        smoothing: 0.0,
        batch: 8,
        device: device.clone(),
        ad: device.clone().autodiff(),
        judged: Vec::new(),
    };
    let (train_rows, val_rows) = (steps.train.len(), steps.val.len());
    let phases = recipe.phase_plan(resume.checkpoints);
    // Phase 1 trains the decoder on the frozen encoder's states: encoded once, before the
    // error rates before training, which then use them too.
    if phases
        .first()
        .is_some_and(|(_, unfreeze, _)| unfreeze.is_none())
    {
        steps.encoded = Some(steps.encode_all(&model.net, on_progress).await?);
    }
    if val_rows > 0 && report.transcription_before.is_none() {
        let t0 = web_time::Instant::now();
        report.transcription_before = Some(steps.error_rates(&model.net).await?);
        let message = format!(
            "before training: word error rate {:.1}% on {} validation clips ({:.1} s)",
            report
                .transcription_before
                .as_ref()
                .map_or(0.0, |r| r.wer * 100.0),
            val_rows,
            t0.elapsed().as_secs_f64()
        );
        if on_progress(&Progress::Notice { message }) == Control::Cancel {
            return Err(Error::Cancelled);
        }
    }

    let rows: Vec<usize> = (0..train_rows).collect();
    let mut net = model.net.clone();
    // (Phase 1 keeps the recipe's name, "head": here it trains the decoder.)
    for (spec, unfreeze, checkpoints) in phases {
        if report.diverged().is_some() {
            break;
        }
        steps.batch = spec.batch_size;
        steps.smoothing = f64::from(spec.label_smoothing);
        steps.judged.clear();
        if unfreeze.is_some() || spec.lora.is_some() {
            // The encoder trains (or its adapters do): its states change every step.
            steps.encoded = None;
        }
        let ad = device.clone().autodiff();
        // With adapters every encoder layer's activations are kept for the backward pass,
        // but only the adapters take optimiser state; they train at `lr`.
        let (trainable, decoder, footprint) = match &spec.lora {
            Some(options) => {
                let mut trainable = net.trainable_lora(options, recipe.seed, &ad)?;
                let params = crate::models::lora::adapter_params(&mut trainable);
                (
                    trainable,
                    None,
                    steps.footprint(Some(Unfreeze::All), params),
                )
            }
            None => {
                let (trainable, decoder) = net.trainable(unfreeze, &ad)?;
                let footprint = steps.footprint(unfreeze, net.num_params());
                (trainable, unfreeze.map(|_| decoder), footprint)
            }
        };
        let mut run = PhaseRun::new(&spec, rows.len(), val_rows, decoder, recipe.seed, &ad);
        run.fit_memory(footprint);
        let mut rng = ChaCha8Rng::seed_from_u64(recipe.seed);
        rng.set_stream(7);
        steps.ad = ad;
        let (kept, phase, _): (Whisper, PhaseReport, Option<Predictions>) = run_epochs(
            &mut steps,
            trainable,
            &rows,
            spec.epochs,
            rng,
            run,
            checkpoints,
            on_progress,
        )
        .await?;
        // The kept epoch's error rates as judged, unless it was judged before a resume.
        let done = phase.val_error.len();
        let kept_at = (phase.best_epoch.max(1) - 1).checked_sub(done - steps.judged.len());
        report.transcription = match kept_at.and_then(|k| steps.judged.get(k)) {
            Some(rates) => Some(rates.clone()),
            None if val_rows > 0 => Some(steps.error_rates(&kept).await?),
            None => None,
        };
        report.phases.push(phase);
        net = kept;
    }
    Ok((Transcriber { net, ..model }, report))
}

/// Clips through Whisper.
struct TranscribeSteps<'a> {
    model: &'a Transcriber,
    data: &'a Transcripts,
    /// Each clip's transcript tokens.
    tokens: Vec<Vec<u32>>,
    /// Training and validation clips.
    train: Vec<usize>,
    val: Vec<usize>,
    /// The frozen encoder's states of every clip (`[1500 * d_model]` each), in phase 1.
    encoded: Option<Vec<Option<Vec<f32>>>>,
    /// Tokens generated at most per validation clip.
    max_new: usize,
    smoothing: f64,
    batch: usize,
    device: Device,
    ad: Device,
    /// The error rates of each epoch the phase judged in this call, in order.
    judged: Vec<ErrorRates>,
}

impl TranscribeSteps<'_> {
    /// Encoder states of every training and validation clip under `net`, `EVAL_BATCH` at a
    /// time (progress as features).
    async fn encode_all(
        &self,
        net: &Whisper,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let mut out = vec![None; self.data.clips.len()];
        let wanted: Vec<usize> = self.train.iter().chain(&self.val).copied().collect();
        let t0 = web_time::Instant::now();
        for (done, chunk) in wanted.chunks(EVAL_BATCH).enumerate() {
            let clips: Vec<&[f32]> = chunk
                .iter()
                .map(|&i| self.data.clips[i].samples.as_slice())
                .collect();
            let states = net.encode(self.model.features(&clips, &self.device));
            let [_, len, d] = states.dims();
            let data = states.into_data_async().await.map_err(compute)?;
            let values = data.as_slice::<f32>().map_err(compute)?;
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = Some(values[k * len * d..(k + 1) * len * d].to_vec());
            }
            let finished = ((done + 1) * EVAL_BATCH).min(wanted.len());
            let seconds = t0.elapsed().as_secs_f64();
            let throughput = finished as f64 / seconds.max(1e-9);
            let event = Progress::Features {
                done: finished,
                total: wanted.len(),
                throughput,
                eta_s: (wanted.len() - finished) as f64 / throughput.max(1e-9),
            };
            if on_progress(&event) == Control::Cancel {
                return Err(Error::Cancelled);
            }
        }
        Ok(out)
    }

    /// The encoder's states of `clips` on `device`: the cached ones (phase 1) or through
    /// `net` (phase 2: with gradients on the autodiff device).
    fn states(&self, net: &Whisper, clips: &[usize], device: &Device) -> Tensor<3> {
        match &self.encoded {
            Some(cache) => {
                let d = self.model.config.d_model;
                let len = self.model.config.max_source_positions;
                let v: Vec<f32> = clips
                    .iter()
                    .flat_map(|&i| {
                        cache[i]
                            .as_deref()
                            .expect("every clip encoded")
                            .iter()
                            .copied()
                    })
                    .collect();
                Tensor::from_data(TensorData::new(v, [clips.len(), len, d]), device)
            }
            None => {
                let samples: Vec<&[f32]> = clips
                    .iter()
                    .map(|&i| self.data.clips[i].samples.as_slice())
                    .collect();
                net.encode(self.model.features(&samples, device))
            }
        }
    }

    /// What a training clip holds through a step with `unfreeze`'s encoder layers training
    /// (`None`: the decoder alone, on cached states).
    fn footprint(&self, unfreeze: Option<Unfreeze>, params: usize) -> Footprint {
        let c = &self.model.config;
        let (layers, stem) = match unfreeze {
            None => (0, false),
            Some(Unfreeze::All) => (c.encoder_layers, true),
            Some(Unfreeze::Last(n)) => (n.min(c.encoder_layers), n > c.encoder_layers),
        };
        let longest = self.train.iter().map(|&i| self.tokens[i].len()).max();
        Footprint::whisper(
            c.max_source_positions,
            c.d_model,
            c.encoder_attention_heads,
            c.encoder_ffn_dim,
            layers,
            stem,
            longest.unwrap_or(0) + c.prompt().len() + 1,
            c.vocab_size,
            params,
        )
    }

    /// Tokens scored in `clips`' teacher-forced loss (their labels: the prompt after its
    /// first token, the text, end-of-text).
    fn scored(&self, clips: &[usize]) -> usize {
        let prompt = self.model.config.prompt().len();
        clips.iter().map(|&i| prompt + self.tokens[i].len()).sum()
    }

    /// The summed token loss of `clips` (teacher-forced, padding not scored) over `tokens`.
    fn loss(&self, net: &Whisper, clips: &[usize], tokens: usize) -> Tensor<1> {
        let pairs: Vec<(Vec<u32>, Vec<u32>)> = clips
            .iter()
            .map(|&i| self.model.teacher(&self.tokens[i]))
            .collect();
        let len = pairs.iter().map(|(i, _)| i.len()).max().unwrap_or(1);
        let pad = self
            .model
            .config
            .pad_token_id
            .unwrap_or(self.model.config.eos_token_id) as i64;
        let mut inputs = Vec::with_capacity(clips.len() * len);
        let mut labels = Vec::with_capacity(clips.len() * len);
        for (i, l) in &pairs {
            inputs.extend(i.iter().map(|&t| t as i64));
            inputs.extend(std::iter::repeat_n(pad, len - i.len()));
            labels.extend(l.iter().map(|&t| t as i64));
            labels.extend(std::iter::repeat_n(-100i64, len - l.len()));
        }
        let shape = [clips.len(), len];
        let inputs = Tensor::<2, Int>::from_data(TensorData::new(inputs, shape), &self.ad);
        let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, shape), &self.ad);
        net.loss_sum(
            self.states(net, clips, &self.ad),
            inputs,
            labels,
            self.smoothing,
        )
        .div_scalar(tokens.max(1) as f32)
    }

    /// Greedy transcripts of the validation clips under `net` (eval device), scored.
    async fn error_rates(&self, net: &Whisper) -> Result<ErrorRates> {
        let mut triples = Vec::with_capacity(self.val.len());
        for chunk in self.val.chunks(EVAL_BATCH) {
            let states = self.states(net, chunk, &self.device);
            let ids = net
                .generate(&self.model.config, states, self.max_new)
                .await?;
            for (&i, t) in chunk.iter().zip(&ids) {
                let clip = &self.data.clips[i];
                triples.push((clip.name.clone(), clip.text.clone(), self.model.decode(t)));
            }
        }
        Ok(ErrorRates::of(triples))
    }
}

impl Steps for TranscribeSteps<'_> {
    type Model = Whisper;

    async fn train_epoch(
        &mut self,
        mut net: Whisper,
        order: &[usize],
        epoch: usize,
        run: &mut PhaseRun,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<Whisper> {
        for chunk in order.chunks(self.batch.max(1)) {
            let clips: Vec<usize> = chunk.iter().map(|&i| self.train[i]).collect();
            let this = &*self;
            // The batch's mean token loss, as one pass would give it: a micro-batch's summed
            // token losses over the batch's tokens (the step weighs each micro-batch's loss
            // by its share of the clips, undone here).
            let tokens = this.scored(&clips);
            let mut loss = |n: &Whisper, r: std::ops::Range<usize>| {
                let share = clips.len() as f32 / r.len() as f32;
                Ok(this.loss(n, &clips[r], tokens).mul_scalar(share))
            };
            net = run
                .step_loss(net, clips.len(), epoch, &mut loss, on_progress)
                .await?;
        }
        Ok(net)
    }

    async fn validate(&mut self, _net: &Whisper) -> Result<Option<Predictions>> {
        Ok(None)
    }

    async fn judge(&mut self, net: &Whisper) -> Result<Validation> {
        if self.val.is_empty() {
            return Ok(Validation::None);
        }
        let rates = self.error_rates(net).await?;
        let wer = rates.wer;
        self.judged.push(rates);
        Ok(Validation::Error(wer))
    }
}
