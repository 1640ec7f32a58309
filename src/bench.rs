//! Speed workloads for the benchmark (`make bench`, `bench/run.mjs`): one implementation that
//! the CLI (`tabtune bench`) and the browser (`Session.bench`) both run, so the native and the
//! in-tab figures time the same code. Models are randomly initialised (speed does not depend on
//! the weights), inputs are random and made once, and each repetition ends with a read back to
//! the host, so its time covers the device's work.
//!
//! The training step is the training loop's own ([`PhaseRun::step`]): the same loss, read-back,
//! optimiser and learning-rate groups as a real phase 2.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::data::tokenize::Tokens;
use crate::models::bert::{Bert, BertConfig};
use crate::models::{Arch, HeadConfig, ImageModel, TextClassifier, TextOptions};
use crate::train::memory::Footprint;
use crate::train::recipe::{FinetunePhase, Unfreeze};
use crate::train::run::{PhaseRun, compute};
use crate::train::{Control, Progress};
use crate::{Error, Result};

/// all-MiniLM-L6-v2's shape (its config.json without the weights).
const MINILM: &str = r#"{"model_type": "bert", "vocab_size": 30522, "hidden_size": 384,
  "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
  "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2,
  "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}"#;

/// Image classes of the benchmark's head.
const IMAGE_CLASSES: usize = 10;
/// Text classes of the benchmark's head.
const TEXT_CLASSES: usize = 2;

/// What one repetition times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// MobileNetV2 pooled features of a batch of 224x224 images (eval mode).
    ImageFeatures,
    /// One MobileNetV2 fine-tuning step over every layer (BatchNorm statistics frozen, AdamW).
    ImageStep,
    /// all-MiniLM-L6-v2 mean-pooled sentence vectors of a batch of `tokens`-long inputs.
    TextFeatures,
    /// One all-MiniLM-L6-v2 fine-tuning step over every layer and a new head (AdamW).
    TextStep,
}

/// A workload and its sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BenchSpec {
    /// The workload.
    pub workload: Workload,
    /// Images or sentences per repetition.
    pub batch: usize,
    /// Tokens per sentence (text workloads).
    pub tokens: usize,
    /// Seed of the weights and inputs.
    pub seed: u64,
    /// Training workloads: examples per micro-batch; by default what the recipe's default
    /// memory budget gives (`train::memory`), 0 for the whole batch at once.
    pub micro_batch: Option<usize>,
}

impl Default for BenchSpec {
    fn default() -> Self {
        Self {
            workload: Workload::ImageFeatures,
            batch: 32,
            tokens: 128,
            seed: 0,
            micro_batch: None,
        }
    }
}

/// One timed repetition.
#[derive(Debug, Clone, Serialize)]
pub struct Rep {
    /// Wall-clock seconds, up to the read back of the result.
    pub seconds: f64,
    /// Images or sentences processed.
    pub items: usize,
    /// Bytes the device's allocator holds in live tensors after the repetition (GPU backends).
    pub device_bytes_in_use: Option<u64>,
    /// Bytes the device's allocator has reserved (live tensors plus pages kept for reuse).
    pub device_bytes_reserved: Option<u64>,
    /// Training workloads: examples per micro-batch in the step (smaller than asked for after
    /// an allocation failure halved it).
    pub micro_batch: Option<usize>,
    /// Training workloads on a GPU: the most the pool held in any step so far (read after each
    /// micro-batch's forward and backward pass: the phase report's `peak_device_bytes`).
    pub device_bytes_peak: Option<u64>,
    /// Training workloads on a GPU: the most the pool held during this repetition's step.
    pub device_bytes_step_peak: Option<u64>,
}

/// A workload built on a device, ready to repeat.
pub struct Bench {
    spec: BenchSpec,
    device: Device,
    state: State,
}

enum State {
    ImageFeatures {
        model: ImageModel,
        images: Tensor<4>,
    },
    ImageStep {
        model: Option<ImageModel>,
        run: Box<PhaseRun>,
        dropout: Dropout,
        images: Tensor<4>,
        labels: Vec<i64>,
    },
    TextFeatures {
        net: TextClassifier,
        tokens: Tokens,
    },
    TextStep {
        net: Option<TextClassifier>,
        run: Box<PhaseRun>,
        tokens: Tokens,
        labels: Vec<i64>,
    },
}

impl Bench {
    /// Build `spec`'s model and inputs on `device` (random weights seeded by `spec.seed`).
    pub fn new(spec: BenchSpec, device: &Device) -> Result<Self> {
        if spec.batch == 0 {
            return Err(bad("batch", "must be at least 1"));
        }
        if !(1..=512).contains(&spec.tokens) {
            return Err(bad("tokens", "must be 1 to 512 (the model's positions)"));
        }
        device.seed(spec.seed);
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let training = matches!(spec.workload, Workload::ImageStep | Workload::TextStep);
        let on = if training {
            device.clone().autodiff()
        } else {
            device.clone()
        };
        let phase = FinetunePhase {
            epochs: 1,
            batch_size: spec.batch,
            ..FinetunePhase::default()
        }
        .spec();
        // The training workloads' loop state: one endless phase, no validation rows.
        let step_run = |head, footprint: Footprint| {
            let mut run = PhaseRun::new(&phase, usize::MAX / 2, 0, Some(head), spec.seed, &on);
            match spec.micro_batch {
                Some(micro) => run.set_micro_batch(micro),
                None => run.fit_memory(footprint),
            }
            Box::new(run)
        };
        let state = match spec.workload {
            Workload::ImageFeatures | Workload::ImageStep => {
                let model = ImageModel::new(Arch::MobileNetV2, IMAGE_CLASSES, &on)?;
                let images = Tensor::random(
                    [spec.batch, 3, 224, 224],
                    Distribution::Normal(0.0, 1.0),
                    &on,
                );
                if training {
                    let (model, head) = model.train().trainable(Some(Unfreeze::All))?;
                    let footprint = Footprint::image(224, model.num_params());
                    State::ImageStep {
                        dropout: DropoutConfig::new(model.arch().dropout()).init(),
                        run: step_run(head, footprint),
                        model: Some(model),
                        images,
                        labels: labels(&mut rng, spec.batch, IMAGE_CLASSES),
                    }
                } else {
                    // As phase 1's feature cache runs it: BatchNorm folded into the convolutions.
                    State::ImageFeatures {
                        model: model.folded(),
                        images,
                    }
                }
            }
            Workload::TextFeatures | Workload::TextStep => {
                let config = BertConfig::from_json(MINILM, "all-MiniLM-L6-v2 shape")?;
                let bert = Bert::new(&config, false, &on)?;
                let head =
                    HeadConfig::new(bert.hidden_size(), TEXT_CLASSES).init_seeded(spec.seed, &on);
                let net = TextClassifier::new(bert, head, &config, &TextOptions::default());
                let tokens = random_tokens(&mut rng, spec.batch, spec.tokens, config.vocab_size);
                if training {
                    let head = burn::module::ParamGroup::ids_from_module(net.classifier.clone());
                    let footprint = Footprint::text(384, 6, spec.tokens, net.num_params());
                    State::TextStep {
                        run: step_run(head, footprint),
                        net: Some(net.train()),
                        tokens,
                        labels: labels(&mut rng, spec.batch, TEXT_CLASSES),
                    }
                } else {
                    State::TextFeatures { net, tokens }
                }
            }
        };
        Ok(Self {
            spec,
            device: on,
            state,
        })
    }

    /// Run and time one repetition.
    pub async fn rep(&mut self) -> Result<Rep> {
        let start = Instant::now();
        let device = &self.device;
        let mut quiet = |_: &Progress| Control::Continue;
        match &mut self.state {
            State::ImageFeatures { model, images } => {
                read(model.features(images.clone())).await?;
            }
            State::ImageStep {
                model,
                run,
                dropout,
                images,
                labels,
            } => {
                let m = model.take().ok_or_else(failed_before)?;
                let mut forward = |m: &ImageModel, r| {
                    Ok(m.logits(dropout.forward(m.features(crate::train::run::rows(images, r)))))
                };
                let m = run.step(m, labels, 1, &mut forward, &mut quiet).await?;
                // The step's updates are queued; reading one updated weight waits for them.
                read(m.head().linear.weight.val().sum()).await?;
                *model = Some(m);
            }
            State::TextFeatures { net, tokens } => {
                read(net.features(tokens, device)?).await?;
            }
            State::TextStep {
                net,
                run,
                tokens,
                labels,
            } => {
                let n = net.take().ok_or_else(failed_before)?;
                let mut forward = |n: &TextClassifier, r: std::ops::Range<usize>| {
                    n.forward(&tokens.rows(r), device)
                };
                let n = run.step(n, labels, 1, &mut forward, &mut quiet).await?;
                read(n.classifier.linear.weight.val().sum()).await?;
                *net = Some(n);
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let usage = device.memory_pool_usage();
        let (micro_batch, device_bytes_peak, device_bytes_step_peak) = match &self.state {
            State::ImageStep { run, .. } | State::TextStep { run, .. } => (
                Some(run.report.micro_batch),
                run.report.peak_device_bytes,
                run.last_step_peak,
            ),
            _ => (None, None, None),
        };
        Ok(Rep {
            micro_batch,
            device_bytes_peak,
            device_bytes_step_peak,
            seconds,
            items: self.spec.batch,
            device_bytes_in_use: usage.as_ref().map(|u| u.bytes_in_use),
            device_bytes_reserved: usage.as_ref().map(|u| u.bytes_reserved),
        })
    }
}

fn bad(field: &str, message: &str) -> Error {
    Error::Recipe {
        field: format!("bench.{field}"),
        message: message.into(),
    }
}

fn failed_before() -> Error {
    Error::Compute(
        "an earlier repetition of this training step failed; build the bench again".into(),
    )
}

/// Wait for `t` by reading it back.
async fn read<const D: usize>(t: Tensor<D>) -> Result<()> {
    t.into_data_async().await.map_err(compute)?;
    Ok(())
}

fn labels(rng: &mut ChaCha8Rng, n: usize, classes: usize) -> Vec<i64> {
    (0..n)
        .map(|_| rng.random_range(0..classes as i64))
        .collect()
}

/// `batch` rows of `len` random word pieces (ids past the special tokens), no padding.
fn random_tokens(rng: &mut ChaCha8Rng, batch: usize, len: usize, vocab: usize) -> Tokens {
    let ids = (0..batch * len)
        .map(|_| rng.random_range(1000..vocab as i64))
        .collect();
    Tokens {
        batch,
        len,
        ids,
        mask: vec![1; batch * len],
        types: vec![0; batch * len],
        truncated: 0,
    }
}

/// Token ids, last hidden states and L2-normalised mean-pooled sentence embeddings of
/// `sentences` under a text model: what the browser tests compare with PyTorch's.
#[derive(Debug, Clone, Serialize)]
pub struct Embedded {
    /// Token ids, row after row.
    pub ids: Vec<i64>,
    /// Attention mask, row after row.
    pub mask: Vec<i64>,
    /// [batch, length, hidden].
    pub dims: [usize; 3],
    /// Inputs cut at the maximum length.
    pub truncated: usize,
    /// Last hidden states, flattened.
    pub hidden: Vec<f32>,
    /// Sentence embeddings, flattened.
    pub embeddings: Vec<f32>,
}

/// See [`Embedded`].
pub async fn embed_text(
    files: &crate::session::ModelFiles,
    sentences: &[String],
    device: &Device,
) -> Result<Embedded> {
    use crate::models::bert::{l2_normalize, mean_pool};
    let crate::session::Model::Text(model) = crate::session::Model::load(files, None, device)?
    else {
        return Err(Error::Data(format!("{}: not a text model", files.name)));
    };
    let tokens = model.tokenizer.encode(sentences)?;
    let (ids, mask, types) = tokens.tensors(device);
    let hidden = model.net.bert.forward(ids, mask.clone(), types);
    let dims = hidden.dims();
    let embeddings = l2_normalize(mean_pool(hidden.clone(), mask));
    let read =
        |t: burn::tensor::TensorData| t.try_to_vec::<f32>().map_err(|e| compute(format!("{e:?}")));
    Ok(Embedded {
        ids: tokens.ids.clone(),
        mask: tokens.mask.clone(),
        dims,
        truncated: tokens.truncated,
        hidden: read(hidden.into_data_async().await.map_err(compute)?)?,
        embeddings: read(embeddings.into_data_async().await.map_err(compute)?)?,
    })
}

/// The `tabtune bench` worker (bench/run.mjs drives it): one JSON answer per JSON command line
/// of `input` — `{"op":"setup","workload":"image_step","batch":32}` builds a workload and runs
/// a warm-up, `{"op":"rep"}` times one repetition (with this process's peak RSS), `{"op":"info"}`,
/// `{"op":"quit"}` — errors included, until `quit` or the end of the input.
#[cfg(not(target_arch = "wasm32"))]
pub fn serve(
    selected: &crate::device::Selected,
    input: impl std::io::BufRead,
    mut out: impl std::io::Write,
) -> std::io::Result<()> {
    use futures_lite::future::block_on;
    use serde_json::{Value, json};
    let mut current: Option<Bench> = None;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = (|| -> std::result::Result<Value, String> {
            let mut command: Value = serde_json::from_str(&line)
                .map_err(|e| format!("not a JSON command: {e}: {line}"))?;
            let op = command
                .as_object_mut()
                .and_then(|o| o.remove("op"))
                .and_then(|v| v.as_str().map(String::from))
                .ok_or("a command needs \"op\": setup, rep, info or quit")?;
            Ok(match op.as_str() {
                "info" => json!({
                    "device": selected.info,
                    "version": env!("CARGO_PKG_VERSION"),
                    "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
                }),
                "setup" => {
                    current = None;
                    let spec: BenchSpec =
                        serde_json::from_value(command).map_err(|e| format!("setup: {e}"))?;
                    let start = Instant::now();
                    let mut bench =
                        Bench::new(spec, &selected.device).map_err(|e| e.to_string())?;
                    let setup_s = start.elapsed().as_secs_f64();
                    let warmup = block_on(bench.rep()).map_err(|e| e.to_string())?;
                    current = Some(bench);
                    // The warm-up whole: with no timed repetitions (`--reps 0`) it is the
                    // row's only step (a phase's first, where the micro-batch is measured).
                    json!({"setup_s": setup_s, "warmup_s": warmup.seconds, "warmup": warmup})
                }
                "rep" => {
                    let bench = current.as_mut().ok_or("rep before a successful setup")?;
                    // Linux: writing 5 to clear_refs starts a new peak-RSS (VmHWM) window.
                    let _ = std::fs::write("/proc/self/clear_refs", "5");
                    let rep = block_on(bench.rep()).map_err(|e| e.to_string())?;
                    let mut value = serde_json::to_value(rep).map_err(|e| e.to_string())?;
                    value["peak_rss_bytes"] = json!(peak_rss());
                    value
                }
                "quit" => return Ok(Value::Null),
                other => return Err(format!("unknown op {other:?}: setup, rep, info or quit")),
            })
        })();
        let answer = match answer {
            Ok(Value::Null) => break,
            Ok(mut value) => {
                value["ok"] = json!(true);
                value
            }
            Err(err) => json!({"ok": false, "error": err}),
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

/// This process's peak resident set (VmHWM) in bytes, where /proc tells it.
#[cfg(not(target_arch = "wasm32"))]
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_runs_a_repetition_on_the_cpu() {
        let device = Device::flex();
        for workload in [
            Workload::ImageFeatures,
            Workload::ImageStep,
            Workload::TextFeatures,
            Workload::TextStep,
        ] {
            let spec = BenchSpec {
                workload,
                batch: 2,
                tokens: 8,
                seed: 1,
                micro_batch: Some(1),
            };
            let mut bench = Bench::new(spec, &device).unwrap();
            for _ in 0..2 {
                let rep = futures_lite::future::block_on(bench.rep()).unwrap();
                assert_eq!(rep.items, 2);
                assert!(rep.seconds > 0.0, "{workload:?}: {rep:?}");
            }
        }
    }

    #[test]
    fn bad_sizes_are_named() {
        let device = Device::flex();
        let err = Bench::new(
            BenchSpec {
                batch: 0,
                ..BenchSpec::default()
            },
            &device,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("bench.batch"), "{err}");
        let err = Bench::new(
            BenchSpec {
                workload: Workload::TextFeatures,
                tokens: 600,
                ..BenchSpec::default()
            },
            &device,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("bench.tokens"), "{err}");
    }
}
