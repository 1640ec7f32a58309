//! THE fine-tuning session: load a model, take a dataset, run the recipe's phases (with a
//! checkpoint at the phase boundary), evaluate, predict, export. The CLI, the wasm facade and
//! the tests all drive this one type; what they do besides is translation.
//!
//! Events arrive as one stream ([`Event`]): training progress, the end of each phase, the
//! checkpoint after the head phase (the files to resume from), warnings.

pub mod files;
pub mod model;
mod warmup;

use burn::prelude::Device;
use serde::Serialize;

pub use files::{ModelFiles, ModelKind, TOKENIZER_EXTRAS};
pub use model::{Model, Scored, ranked, top};
pub use warmup::WarmUp;

#[cfg(not(target_arch = "wasm32"))]
pub mod folder;

use crate::data::classes::remap;
use crate::data::series::{Recordings, Wanted};
use crate::data::source::ImageSource;
use crate::data::split::Split;
use crate::data::{AudioClips, Summary, TextSet};
use crate::models::{ModelInfo, TextOptions};
use crate::train::pipeline::Miss;
use crate::train::{
    Checkpoints, Control, EpochState, Metrics, PhaseReport, Progress, Recipe, Resume, RunReport,
};
use crate::{Error, Result};

/// A labelled dataset for a session.
pub enum Dataset {
    /// Images decoded on demand; `split`: (train rows, validation rows) when given.
    Images {
        /// The images.
        source: Box<dyn ImageSource>,
        /// A validation set given by the user, else the recipe's split.
        split: Option<Split>,
        /// Files of the listing left out (not images), as (name, reason).
        skipped: Vec<(String, String)>,
    },
    /// A text table.
    Text {
        /// The rows.
        set: TextSet,
        /// A validation set given by the user, else the recipe's split.
        split: Option<Split>,
    },
    /// Audio files, decoded and resampled to 16 kHz (cut into windows when a run starts).
    Audio {
        /// The files.
        clips: AudioClips,
        /// A validation set given by the user (file indices), else the recipe's split.
        split: Option<Split>,
    },
    /// Transcribed clips (speech recognition).
    Transcripts {
        /// The clips, decoded, with their transcripts.
        set: crate::data::transcripts::Transcripts,
    },
    /// Numeric recordings: the files as given (read again for the model's channels and rate
    /// when a run starts), and what they hold as read at their own rate.
    Series {
        /// (name, group, bytes) of every file.
        files: Vec<(String, String, Vec<u8>)>,
        /// Names of the files that are the validation set (given by the user), if any.
        val: Option<Vec<String>>,
        /// The files read with their own channels and rate (the summary's).
        preview: Recordings,
    },
}

impl Dataset {
    /// Recordings from `files` (name, group, bytes) with a `label` column (classes) or
    /// without (regressions, whose targets the model or recipe names); `val`: the names of
    /// the validation files among them.
    pub fn series(files: Vec<(String, String, Vec<u8>)>, val: Option<Vec<String>>) -> Result<Self> {
        let labelled = files.iter().any(|(_, _, b)| {
            let head = &b[..b.len().min(4096)];
            let line = head.split(|c| *c == b'\n').next().unwrap_or(&[]);
            String::from_utf8_lossy(line).contains("label")
        });
        let wanted = Wanted {
            channels: Vec::new(),
            label_column: labelled.then(|| "label".to_string()),
            targets: Vec::new(),
            rate_hz: None,
            declared_rate_hz: 0.0,
            max_gap_s: crate::data::SeriesOptions::default().max_gap_s,
        };
        let preview = Recordings::read(files.clone(), &wanted)?;
        Ok(Self::Series {
            files,
            val,
            preview,
        })
    }
}

impl Dataset {
    /// The kind of model that trains on it.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Images { .. } => ModelKind::Image,
            Self::Text { .. } => ModelKind::Text,
            Self::Audio { .. } => ModelKind::Audio,
            Self::Series { .. } => ModelKind::Series,
            Self::Transcripts { .. } => ModelKind::Transcription,
        }
    }

    /// Class names in label order.
    pub fn classes(&self) -> &[String] {
        match self {
            Self::Images { source, .. } => source.classes(),
            Self::Text { set, .. } => &set.classes,
            Self::Audio { clips, .. } => &clips.classes,
            Self::Series { preview, .. } => &preview.classes,
            Self::Transcripts { .. } => &[],
        }
    }

    fn labels(&self) -> Vec<u32> {
        match self {
            Self::Images { source, .. } => source.labels(),
            Self::Text { set, .. } => set.labels.clone(),
            Self::Audio { clips, .. } => clips.labels.clone(),
            Self::Transcripts { .. } => Vec::new(),
            // One per labelled second.
            Self::Series { preview, .. } => {
                let rate = preview.rate_hz.max(1.0) as usize;
                preview
                    .items
                    .iter()
                    .flat_map(|r| r.labels.iter().step_by(rate).flatten().copied())
                    .collect()
            }
        }
    }

    /// Examples per class.
    pub fn counts(&self) -> Vec<usize> {
        crate::data::summary::counts(self.classes().len(), &self.labels())
    }

    /// Classes, counts, warnings (and for a table its columns and first rows).
    pub fn summary(&self) -> Summary {
        match self {
            Self::Images {
                source, skipped, ..
            } => Summary {
                skipped: skipped.clone(),
                ..Summary::images(source.classes(), &source.labels())
            },
            Self::Text { set, .. } => Summary::text(set, 5),
            Self::Audio { clips, .. } => Summary {
                skipped: clips.skipped.clone(),
                ..Summary::audio(&clips.classes, &clips.labels)
            },
            Self::Series { preview, .. } => Summary::series(preview, &self.labels()),
            Self::Transcripts { set } => Summary::transcripts(set, 5),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Dataset {
    /// The data a `kind` model trains on, from disk. Images: a folder of class subfolders or
    /// a `file,label` list; text: a CSV/TSV/JSONL table or a folder of class subfolders of
    /// .txt files. `val`: a validation set of the same form and classes.
    pub fn open(
        kind: ModelKind,
        data: &std::path::Path,
        val: Option<&std::path::Path>,
        columns: &crate::data::Columns,
    ) -> Result<Self> {
        match kind {
            ModelKind::Image => {
                let train = crate::data::ImageFolder::open_any(data)?;
                let val = val.map(crate::data::ImageFolder::open_any).transpose()?;
                let (source, split) = crate::data::FolderSource::new(&train, val.as_ref())?;
                let skipped = train
                    .skipped
                    .iter()
                    .chain(val.iter().flat_map(|v| &v.skipped))
                    .map(|(file, why)| (file.display().to_string(), why.clone()))
                    .collect();
                Ok(Self::Images {
                    source: Box::new(source),
                    split,
                    skipped,
                })
            }
            ModelKind::Text => {
                let set = TextSet::open(data, columns)?;
                let (set, split) = match val {
                    None => (set, None),
                    Some(val) => {
                        let (set, split) = set.with_validation(
                            TextSet::open(val, columns)?,
                            &val.display().to_string(),
                        )?;
                        (set, Some(split))
                    }
                };
                Ok(Self::Text { set, split })
            }
            ModelKind::Audio => {
                let clips = AudioClips::open(data)?;
                let (clips, split) = match val {
                    None => (clips, None),
                    Some(val) => {
                        let (clips, split) = clips
                            .with_validation(AudioClips::open(val)?, &val.display().to_string())?;
                        (clips, Some(split))
                    }
                };
                Ok(Self::Audio { clips, split })
            }
            ModelKind::Transcription => {
                use crate::data::transcripts::Transcripts;
                let mut set = Transcripts::open(data)?;
                if let Some(val) = val {
                    let more = Transcripts::open(val)?;
                    let from = set.clips.len();
                    set.val = Some((from..from + more.clips.len()).collect());
                    set.clips.extend(more.clips);
                    set.skipped.extend(more.skipped);
                }
                Ok(Self::Transcripts { set })
            }
            ModelKind::Series => {
                let mut files = crate::data::series::list(data)?;
                let val = match val {
                    None => None,
                    Some(val) => {
                        let more = crate::data::series::list(val)?;
                        let names: Vec<String> =
                            more.iter().map(|(n, _, _)| format!("val/{n}")).collect();
                        files.extend(
                            more.into_iter()
                                .map(|(n, g, b)| (format!("val/{n}"), format!("val/{g}"), b)),
                        );
                        Some(names)
                    }
                };
                Self::series(files, val)
            }
        }
    }
}

/// What a run can continue from: written after the head phase and after every epoch of the
/// fine-tuning phase but its last.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The phase it was taken in ("head" at its end, "finetune" after an epoch).
    pub phase: String,
    /// The epoch of the fine-tuning phase done, for a checkpoint taken in it.
    pub epoch: Option<usize>,
    /// The files: the model the fine-tuning phase starts from as [`Session::export`] writes it
    /// (report.json holds the recipe and the report of the phases before), and after an epoch
    /// the phase's state beside it ([`EpochState::files`]).
    pub files: Vec<(String, Vec<u8>)>,
    /// The whole recipe of the run.
    pub recipe: Recipe,
    /// The report of the phases done before the fine-tuning phase.
    pub report: Option<RunReport>,
}

/// The model a run's fine-tuning phase starts from, as checkpoint files, with its recipe and
/// the report so far: what every checkpoint of that phase repeats.
struct PhaseStart {
    files: Vec<(String, Vec<u8>)>,
    recipe: Recipe,
    report: Option<RunReport>,
}

/// report.json of a checkpoint.
#[derive(Serialize, serde::Deserialize)]
struct SavedRun {
    recipe: Recipe,
    report: Option<RunReport>,
}

/// One event of a session's run.
#[derive(Debug)]
pub enum Event<'a> {
    /// Training progress (features, steps, epochs).
    Progress(&'a Progress),
    /// A phase ended.
    PhaseEnd(&'a PhaseReport),
    /// A checkpoint to resume from.
    Checkpoint(&'a Checkpoint),
    /// Something the user should know (rows left out, a fallback).
    Warning(&'a str),
}

/// The validation results of the last run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Class names.
    pub classes: Vec<String>,
    /// Metrics on the validation rows (none without validation rows).
    pub metrics: Option<Metrics>,
    /// Validation examples the kept model got wrong.
    pub misclassified: Vec<Miss>,
    /// Examples left out (unreadable), as (name, reason).
    pub skipped: Vec<(String, String)>,
    /// Regressions (series models with values): the errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regression: Option<crate::train::series::RegressionMetrics>,
    /// Speech recognisers: word and character error rates, per clip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcription: Option<crate::train::wer::ErrorRates>,
}

/// What a speech recogniser heard in one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// The file.
    pub name: String,
    /// The transcript.
    pub text: String,
    /// Its length.
    pub seconds: f64,
}

/// A model that predicts: fine-tuned in this session, or loaded fine-tuned.
struct Trained {
    model: Model,
    labels: Vec<String>,
    run: Option<(Recipe, RunReport)>,
    extras: Vec<(String, Vec<u8>)>,
}

/// The device memory pool's level ([`Session::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceMemory {
    /// Bytes live tensors use.
    pub in_use_bytes: u64,
    /// Bytes the pool holds on the device (at least `in_use_bytes`).
    pub reserved_bytes: u64,
    /// Live allocations.
    pub allocations: u64,
}

/// One fine-tuning session on one device.
pub struct Session {
    device: Device,
    base: Option<ModelFiles>,
    dataset: Option<Dataset>,
    trained: Option<Trained>,
    /// Examples per batch through a frozen model (feature cache, evaluation, prediction).
    pub feature_batch: Option<usize>,
}

impl Session {
    /// A session computing on `device`.
    pub fn new(device: Device) -> Self {
        Self {
            device,
            base: None,
            dataset: None,
            trained: None,
            feature_batch: None,
        }
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// What the device's memory pool holds once its free pages are returned (None on the CPU):
    /// after a run, the level later runs should come back to.
    pub fn memory(&self) -> Option<DeviceMemory> {
        self.device.memory_cleanup();
        let usage = self.device.memory_pool_usage()?;
        Some(DeviceMemory {
            in_use_bytes: usage.bytes_in_use,
            reserved_bytes: usage.bytes_reserved,
            allocations: usage.number_allocs,
        })
    }

    /// Take `files` as the model to fine-tune. A fine-tuned classifier (config.json names its
    /// classes) is also loaded to predict, evaluate and export at once. A model that fails to
    /// load leaves the session as it was; whether it suits the dataset is checked when training.
    pub fn load(&mut self, files: ModelFiles) -> Result<&ModelInfo> {
        // Every tensor is read into the architecture now, so that a file that cannot be
        // trained is refused here and the model loaded before stays.
        let model = Model::load(&files, None, &self.device)?;
        self.trained = files.labels().map(|labels| Trained {
            labels: labels.to_vec(),
            model,
            run: None,
            extras: files.extras.clone(),
        });
        Ok(&self.base.insert(files).info)
    }

    /// PEFT's adapter folder (`adapter_config.json`'s text, `adapter_model.safetensors`' bytes,
    /// `name` for messages) put onto the loaded model, made elsewhere (PEFT) or by tabtune:
    /// the model is loaded again with it, predicts with it at once when it carries a head, and
    /// trains it further (the default recipe's adapters are then the folder's). An adapter
    /// loaded before is replaced, not stacked. A folder that does not fit leaves the loaded
    /// model as it was.
    pub fn load_adapter(&mut self, name: &str, config: &str, weights: &[u8]) -> Result<&ModelInfo> {
        let mut base = self
            .base
            .clone()
            .ok_or_else(|| Error::Data("no model is loaded: load the base model first".into()))?;
        base.adapter = None;
        self.load(base.with_adapter(name, config, weights)?)
    }

    /// A warm-up for the loaded model ([`WarmUp::run`]) to run while the data loads: its own
    /// copy of the model, loaded now, so the session stays free meanwhile.
    pub fn warm_up(&self) -> Result<WarmUp> {
        let base = self
            .base
            .as_ref()
            .ok_or_else(|| Error::Data("no model is loaded".into()))?;
        Ok(WarmUp {
            model: Model::load(base, None, &self.device)?,
            recipe: self.default_recipe(),
            device: self.device.clone(),
        })
    }

    /// Examples per batch through a frozen model: `feature_batch`, else 16 images or 32 texts.
    fn batch(&self, kind: ModelKind) -> usize {
        let default = match kind {
            ModelKind::Image => 16,
            ModelKind::Text | ModelKind::Audio => 32,
            ModelKind::Series => 64,
            ModelKind::Transcription => 8,
        };
        self.feature_batch.unwrap_or(default)
    }

    /// The text options of the model that predicts (text models).
    pub fn text_options(&self) -> Option<&TextOptions> {
        match &self.trained.as_ref()?.model {
            Model::Text(m) => Some(&m.options),
            Model::Image(_) | Model::Audio(_) | Model::Series(_) | Model::Transcription(_) => None,
        }
    }

    /// The class names of the model that predicts.
    pub fn labels(&self) -> Option<&[String]> {
        self.trained.as_ref().map(|t| t.labels.as_slice())
    }

    /// Take `dataset` to train on; the model loaded, if any, must be of its kind.
    pub fn set_dataset(&mut self, dataset: Dataset) -> Result<Summary> {
        if let Some(base) = &self.base {
            check_kinds(base.kind(), &dataset)?;
        }
        let summary = dataset.summary();
        self.dataset = Some(dataset);
        Ok(summary)
    }

    /// Add `(name, label)` images to the image dataset (the page sends large sets in chunks).
    pub fn extend_images(&mut self, items: Vec<(String, String)>) -> Result<Summary> {
        match &mut self.dataset {
            Some(Dataset::Images { source, .. }) => source.extend(items)?,
            _ => return Err(Error::Data("no image dataset to add to".into())),
        }
        Ok(self.summary().expect("a dataset"))
    }

    /// The dataset's summary, once set.
    pub fn summary(&self) -> Option<Summary> {
        self.dataset.as_ref().map(Dataset::summary)
    }

    /// The kind whose recipe defaults apply: the model's, else the dataset's, else images.
    pub fn kind(&self) -> ModelKind {
        self.base
            .as_ref()
            .map(ModelFiles::kind)
            .or(self.dataset.as_ref().map(Dataset::kind))
            .unwrap_or(ModelKind::Image)
    }

    /// The recipe defaults of this session's kind, every field filled in.
    pub fn default_recipe(&self) -> Recipe {
        let mut recipe = Recipe::defaults(self.kind().modality());
        // A model loaded with an adapter trains that adapter further.
        if let (Some(adapter), Some(finetune)) = (
            self.base.as_ref().and_then(|b| b.adapter.as_ref()),
            recipe.finetune.as_mut(),
        ) {
            finetune.lora = Some(adapter.options.clone());
            // Whisper's first phase would train the decoder itself: adapters from the start.
            if self.kind() == ModelKind::Transcription {
                recipe.head.epochs = 0;
            }
        }
        if let Some(text) = (self.base.as_ref())
            .and_then(|b| b.adapter.as_ref())
            .and_then(|a| a.text_options())
        {
            recipe.text = text;
        }
        recipe
    }

    /// `json` (fields left out keep the defaults of this session's kind) validated, and, with
    /// a dataset, no chosen batch larger than its training rows.
    pub fn check_recipe(&self, json: Option<&str>) -> Result<Recipe> {
        let modality = self.kind().modality();
        let recipe = match json {
            Some(json) => Recipe::from_json_for(json, modality)?,
            None => Recipe::defaults(modality),
        };
        if let Some(dataset) = self
            .dataset
            .as_ref()
            .filter(|d| d.kind() != ModelKind::Series)
        {
            // (A series dataset's windows are known once the model's rate and window cut it.)
            let rows = match dataset {
                Dataset::Images {
                    split: Some((train, _)),
                    ..
                }
                | Dataset::Text {
                    split: Some((train, _)),
                    ..
                }
                | Dataset::Audio {
                    split: Some((train, _)),
                    ..
                } => train.len(),
                // Clips: the given split, else about val_fraction of the sentences held out.
                Dataset::Transcripts { set } => match &set.val {
                    Some(val) => set.clips.len() - val.len(),
                    None => {
                        crate::data::split::train_count(&[set.clips.len()], recipe.val_fraction)
                    }
                },
                _ => crate::data::split::train_count(&dataset.counts(), recipe.val_fraction),
            };
            recipe.check_rows(rows, &Recipe::defaults(modality))?;
        }
        Ok(recipe)
    }

    /// What the adapters of the recipe `json` would be on the loaded model: the layers
    /// adapted, the parameters trained (adapters and the new head) against the model's, the
    /// adapter folder's size. `None` for a recipe without adapters; an error names targets
    /// that match no layer, or a kind of model that takes none.
    pub fn lora_plan(&self, json: Option<&str>) -> Result<Option<model::LoraPlan>> {
        let recipe = self.check_recipe(json)?;
        if recipe
            .finetune
            .as_ref()
            .and_then(|f| f.lora.as_ref())
            .is_none()
        {
            return Ok(None);
        }
        let base = self
            .base
            .as_ref()
            .ok_or_else(|| Error::Data("no model is loaded".into()))?;
        let model = Model::load(base, Some(&recipe), &self.device)?;
        model.lora_plan(&recipe, self.classes_or(&model))
    }

    /// The dataset's classes, else what `model` outputs.
    fn classes_or(&self, model: &Model) -> usize {
        self.dataset
            .as_ref()
            .map_or(model.outputs(), |d| d.classes().len())
    }

    /// Run `recipe` on the model and the dataset: the head phase, a checkpoint, the
    /// fine-tuning phase, as the recipe says. The kept model then predicts and exports.
    pub async fn train(
        &mut self,
        recipe: &Recipe,
        on: &mut dyn FnMut(Event) -> Control,
    ) -> Result<RunReport> {
        let base = self
            .base
            .as_ref()
            .ok_or_else(|| Error::Data("no model is loaded".into()))?;
        self.ready()?;
        recipe.validate()?;
        let model = Model::load(base, Some(recipe), &self.device)?;
        // Adapters that match no layer, or a model that takes none, before any training.
        model.lora_plan(recipe, self.classes_or(&model))?;
        let extras = base.extras.clone();
        self.run(model, recipe, extras, on).await
    }

    /// Continue a run from one of its checkpoints (the files of a [`Checkpoint`]): after its
    /// head phase, or after an epoch of its fine-tuning phase. The dataset must be the run's;
    /// the tokenizer and its companions are the loaded model's. The report says where it
    /// took up (`resumed_after`).
    pub async fn resume(
        &mut self,
        checkpoint: Vec<(String, Vec<u8>)>,
        on: &mut dyn FnMut(Event) -> Control,
    ) -> Result<RunReport> {
        let base = self
            .base
            .as_ref()
            .ok_or_else(|| Error::Data("no model is loaded".into()))?;
        self.ready()?;
        let file = |name: &str| {
            checkpoint
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, bytes)| bytes.clone())
                .ok_or_else(|| Error::Data(format!("the checkpoint has no {name}")))
        };
        let saved: SavedRun = serde_json::from_slice(&file("report.json")?)
            .map_err(|e| Error::Data(format!("the checkpoint's report.json: {e}")))?;
        saved.recipe.validate()?;
        if saved.recipe.finetune.is_none() {
            return Err(Error::Recipe {
                field: "finetune".into(),
                message: "the run to resume has no fine-tuning phase left".into(),
            });
        }
        let from = EpochState::from_files(&checkpoint)?;
        let mut named = vec![
            ("model.safetensors".to_string(), file("model.safetensors")?),
            ("config.json".to_string(), file("config.json")?),
        ];
        if let Some(tokenizer) = &base.tokenizer {
            named.push(("tokenizer.json".into(), tokenizer.clone()));
        }
        let extras = base.extras.clone();
        let name = format!("{} (checkpoint)", base.name);
        let files = ModelFiles::from_named(&name, named, Some(base.kind()))?;
        let model = Model::load(&files, Some(&saved.recipe), &self.device)?;
        let after = match &from {
            Some(s) => format!("{} epoch {}", s.state.phase, s.state.epoch),
            None => "head".into(),
        };
        let start = PhaseStart {
            files: checkpoint
                .into_iter()
                .filter(|(name, _)| !EpochState::is_state_file(name))
                .collect(),
            recipe: saved.recipe,
            report: saved.report,
        };
        let recipe = start.recipe.clone();
        let (model, mut report) = self.finetune(model, start, from, on).await?;
        report.resumed_after = Some(after);
        self.keep(model, &recipe, report, extras)
    }

    fn ready(&self) -> Result<&Dataset> {
        let dataset = self
            .dataset
            .as_ref()
            .ok_or_else(|| Error::Data("no dataset is set".into()))?;
        if let Some(base) = &self.base {
            check_kinds(base.kind(), dataset)?;
        }
        Ok(dataset)
    }

    async fn run(
        &mut self,
        model: Model,
        recipe: &Recipe,
        extras: Vec<(String, Vec<u8>)>,
        on: &mut dyn FnMut(Event) -> Control,
    ) -> Result<RunReport> {
        if recipe.finetune.is_none() {
            let (model, report) = self
                .phases(model, recipe, Resume::default(), None, on)
                .await?;
            return self.keep(model, recipe, report, extras);
        }
        // The head phase alone, a checkpoint, then the rest from that model: the same steps as
        // one uninterrupted call, and what a resumed run does after a reload.
        let start = if recipe.head.epochs > 0 {
            let head_only = Recipe {
                finetune: None,
                ..recipe.clone()
            };
            let (mut model, first) = self
                .phases(model, &head_only, Resume::default(), None, on)
                .await?;
            match &mut model {
                Model::Text(m) => m.labels = Some(first.classes.clone()),
                Model::Audio(m) => m.labels = Some(first.classes.clone()),
                Model::Image(_) | Model::Series(_) | Model::Transcription(_) => {}
            }
            if first.diverged().is_some() {
                // The head phase kept its last good model; fine-tuning from it would start
                // from a phase that failed.
                return self.keep(model, recipe, first, extras);
            }
            let files = model
                .files(&first.classes, Some((recipe, &first)), &extras)
                .await?;
            let checkpoint = Checkpoint {
                phase: "head".into(),
                epoch: None,
                files,
                recipe: recipe.clone(),
                report: Some(first),
            };
            if on(Event::Checkpoint(&checkpoint)) == Control::Cancel {
                return Err(Error::Cancelled);
            }
            (model, checkpoint.files, checkpoint.report)
        } else {
            // The model keeps its own head: its files (and the recipe) start the checkpoints.
            let mut files = model.files(self.ready()?.classes(), None, &extras).await?;
            let saved = SavedRun {
                recipe: recipe.clone(),
                report: None,
            };
            let json = serde_json::to_vec_pretty(&saved).map_err(|e| Error::Data(e.to_string()))?;
            files.push(("report.json".into(), json));
            (model, files, None)
        };
        let (model, files, report) = start;
        let start = PhaseStart {
            files,
            recipe: recipe.clone(),
            report,
        };
        let (model, report) = self.finetune(model, start, None, on).await?;
        self.keep(model, recipe, report, extras)
    }

    /// The fine-tuning phase of `start.recipe` on `model`, from its beginning or from the
    /// epoch state `from`, with a checkpoint after every epoch but the last.
    async fn finetune(
        &mut self,
        model: Model,
        start: PhaseStart,
        from: Option<EpochState>,
        on: &mut dyn FnMut(Event) -> Control,
    ) -> Result<(Model, RunReport)> {
        let rest = after_head(&start.recipe);
        let resume = Resume {
            prior: start.report.clone(),
            checkpoints: Checkpoints {
                from,
                every_epoch: true,
            },
        };
        self.phases(model, &rest, resume, Some(&start), on).await
    }

    fn keep(
        &mut self,
        model: Model,
        recipe: &Recipe,
        report: RunReport,
        extras: Vec<(String, Vec<u8>)>,
    ) -> Result<RunReport> {
        self.trained = Some(Trained {
            model,
            labels: report.classes.clone(),
            run: Some((recipe.clone(), report.clone())),
            extras,
        });
        Ok(report)
    }

    /// The phases `recipe` names, on the dataset, in one core call; phase ends as events, and
    /// the fine-tuning phase's epoch states as checkpoints beside `start`'s files.
    async fn phases(
        &self,
        model: Model,
        recipe: &Recipe,
        resume: Resume,
        start: Option<&PhaseStart>,
        on: &mut dyn FnMut(Event) -> Control,
    ) -> Result<(Model, RunReport)> {
        let dataset = self.ready()?;
        let prior = &resume.prior;
        let done = prior.as_ref().map_or(0, |p| p.phases.len());
        // Rows a table left out were in its summary already.
        let listed = match dataset {
            Dataset::Text { set, .. } => set.skipped.len(),
            Dataset::Audio { clips, .. } => clips.skipped.len(),
            Dataset::Series { preview, .. } => preview.skipped.len(),
            Dataset::Transcripts { set } => set.skipped.len(),
            Dataset::Images { .. } => 0,
        };
        let skipped = prior
            .as_ref()
            .map_or(listed, |p| p.skipped.len().max(listed));
        let mut progress = |p: &Progress| match (p, start) {
            (Progress::Saved(state), Some(start)) => match state.files() {
                Ok(files) => on(Event::Checkpoint(&Checkpoint {
                    phase: state.state.phase.clone(),
                    epoch: Some(state.state.epoch),
                    files: [start.files.clone(), files].concat(),
                    recipe: start.recipe.clone(),
                    report: start.report.clone(),
                })),
                Err(err) => on(Event::Warning(&format!(
                    "no checkpoint after this epoch: {err}"
                ))),
            },
            (Progress::Saved(_), None) => Control::Continue,
            (Progress::Notice { message }, _) => on(Event::Warning(message)),
            _ => on(Event::Progress(p)),
        };
        let (model, report) = match (model, dataset) {
            (Model::Image(m), Dataset::Images { source, split, .. }) => {
                let batch = self.batch(ModelKind::Image);
                let (m, r) = crate::train::finetune_images(
                    m,
                    source.as_ref(),
                    split.clone(),
                    recipe,
                    resume,
                    batch,
                    &self.device,
                    &mut progress,
                )
                .await?;
                (Model::Image(m), r)
            }
            (Model::Text(m), Dataset::Text { set, split }) => {
                let batch = self.batch(ModelKind::Text);
                let (m, r) = crate::train::finetune_text(
                    m,
                    set,
                    split.clone(),
                    recipe,
                    resume,
                    batch,
                    &self.device,
                    &mut progress,
                )
                .await?;
                (Model::Text(m), r)
            }
            (Model::Audio(m), Dataset::Audio { clips, split }) => {
                let batch = self.batch(ModelKind::Audio);
                let (m, r) = crate::train::finetune_audio(
                    m,
                    clips,
                    split.clone(),
                    recipe,
                    resume,
                    batch,
                    &self.device,
                    &mut progress,
                )
                .await?;
                (Model::Audio(m), r)
            }
            (Model::Series(m), Dataset::Series { files, val, .. }) => {
                let data = series_recordings(&m, files, recipe)?;
                let split = val.as_ref().map(|names| {
                    let is_val = |name: &str| {
                        names
                            .iter()
                            .any(|v| name == v || name.starts_with(&format!("{v} (part")))
                    };
                    let (v, t): (Vec<usize>, Vec<usize>) =
                        (0..data.items.len()).partition(|&i| is_val(&data.items[i].name));
                    (t, v)
                });
                let (m, r) = crate::train::finetune_series(
                    m,
                    &data,
                    split,
                    recipe,
                    resume,
                    &self.device,
                    &mut progress,
                )
                .await?;
                (Model::Series(m), r)
            }
            (Model::Transcription(m), Dataset::Transcripts { set }) => {
                let (m, r) = crate::train::transcribe::finetune_transcription(
                    m,
                    set,
                    recipe,
                    resume,
                    &self.device,
                    &mut progress,
                )
                .await?;
                (Model::Transcription(m), r)
            }
            (model, dataset) => return Err(mismatch(model.kind(), dataset)),
        };
        for (name, why) in report.skipped.iter().skip(skipped) {
            on(Event::Warning(&format!("skipped {name}: {why}")));
        }
        for phase in &report.phases[done.min(report.phases.len())..] {
            on(Event::PhaseEnd(phase));
        }
        Ok((model, report))
    }

    fn trained(&self) -> Result<&Trained> {
        self.trained
            .as_ref()
            .ok_or_else(|| Error::Data("no model has been fine-tuned or loaded yet".into()))
    }

    /// The model that predicts: the one fine-tuned or loaded fine-tuned, else the loaded
    /// model as it is (its classes numbered: "0", "1", ...).
    fn predictor(&mut self) -> Result<&Trained> {
        if self.trained.is_none() {
            let base = self
                .base
                .as_ref()
                .ok_or_else(|| Error::Data("no model is loaded".into()))?;
            if !matches!(
                base.kind(),
                ModelKind::Image | ModelKind::Series | ModelKind::Transcription
            ) {
                // An encoder alone has no classifier to predict with.
                return Err(Error::Data(format!(
                    "no {} model has been fine-tuned or loaded in this session yet (the \
                     loaded network has no classifier)",
                    base.kind().name()
                )));
            }
            let model = Model::load(base, None, &self.device)?;
            self.trained = Some(Trained {
                labels: (0..model.outputs()).map(|i| i.to_string()).collect(),
                model,
                run: None,
                extras: base.extras.clone(),
            });
        }
        self.trained()
    }

    /// The last run's validation results.
    pub fn last_evaluation(&self) -> Result<Evaluation> {
        let (_, report) =
            self.trained()?.run.as_ref().ok_or_else(|| {
                Error::Data("nothing has been trained in this session yet".into())
            })?;
        Ok(Evaluation {
            classes: report.classes.clone(),
            metrics: report.metrics.clone(),
            misclassified: report.misclassified.clone(),
            skipped: report.skipped.clone(),
            regression: report.regression.clone(),
            transcription: report.transcription.clone(),
        })
    }

    /// Evaluate the model that predicts on `dataset`, whose labels must be among the model's
    /// (matched by name, in any order).
    pub async fn evaluate(&mut self, dataset: &Dataset) -> Result<Evaluation> {
        self.predictor()?;
        let trained = self.trained()?;
        if let (Model::Series(m), Dataset::Series { files, .. }) = (&trained.model, dataset) {
            let recipe = match &trained.run {
                Some((recipe, _)) => recipe.clone(),
                None => Recipe::for_series(),
            };
            let data = series_recordings(m, files, &recipe)?;
            let e = crate::train::series::evaluate_series(m, &data, &recipe.series, &self.device)
                .await?;
            let mut skipped = data.skipped.clone();
            skipped.extend(e.skipped);
            let metrics = match e.predictions {
                Some((truth, predicted)) => {
                    let to_model = remap(&data.classes, &trained.labels)?;
                    let truth: Vec<u32> = truth.iter().map(|&t| to_model[t as usize]).collect();
                    Some(Metrics::new(&trained.labels, &truth, &predicted))
                }
                None => None,
            };
            return Ok(Evaluation {
                classes: if metrics.is_some() {
                    trained.labels.clone()
                } else {
                    Vec::new()
                },
                metrics,
                misclassified: Vec::new(),
                skipped,
                regression: e.regression,
                transcription: None,
            });
        }
        if let (Model::Transcription(m), Dataset::Transcripts { set }) = (&trained.model, dataset) {
            let clips: Vec<&[f32]> = set.clips.iter().map(|c| c.samples.as_slice()).collect();
            let texts = m
                .transcribe(&clips, self.batch(ModelKind::Transcription), &self.device)
                .await?;
            let rates = crate::train::wer::ErrorRates::of(
                set.clips
                    .iter()
                    .zip(texts)
                    .map(|(c, t)| (c.name.clone(), c.text.clone(), t)),
            );
            return Ok(Evaluation {
                classes: Vec::new(),
                metrics: None,
                misclassified: Vec::new(),
                skipped: set.skipped.clone(),
                regression: None,
                transcription: Some(rates),
            });
        }
        let labels = &trained.labels;
        let to_model = remap(dataset.classes(), labels)?;
        let mut skipped = Vec::new();
        let (truth, predicted) = match (&trained.model, dataset) {
            (Model::Image(m), Dataset::Images { source, .. }) => {
                let rows: Vec<usize> = (0..source.len()).collect();
                crate::train::images::predict(
                    m,
                    source.as_ref(),
                    &rows,
                    &m.arch().preprocess(),
                    self.batch(ModelKind::Image),
                    &self.device,
                    &mut skipped,
                )
                .await?
            }
            (model @ Model::Text(_), Dataset::Text { set, .. }) => {
                let texts: Vec<&str> = set.texts.iter().map(String::as_str).collect();
                let probs = model
                    .text_probabilities(&texts, self.batch(ModelKind::Text), &self.device)
                    .await?;
                (set.labels.clone(), crate::train::text::argmax(&probs))
            }
            (model @ Model::Audio(_), Dataset::Audio { clips, .. }) => {
                let probs = model
                    .audio_probabilities(&clips.clips, self.batch(ModelKind::Audio), &self.device)
                    .await?;
                (clips.labels.clone(), crate::train::text::argmax(&probs))
            }
            (model, dataset) => return Err(mismatch(model.kind(), dataset)),
        };
        let truth: Vec<u32> = truth.iter().map(|&t| to_model[t as usize]).collect();
        Ok(Evaluation {
            classes: labels.clone(),
            metrics: Some(Metrics::new(labels, &truth, &predicted)),
            misclassified: Vec::new(),
            skipped,
            regression: None,
            transcription: None,
        })
    }

    /// Rank the classes for each decoded image.
    pub async fn predict_images(
        &mut self,
        images: Vec<image::RgbImage>,
    ) -> Result<Vec<Vec<Scored>>> {
        self.predictor()?;
        let trained = self.trained()?;
        let batch = self.batch(ModelKind::Image);
        let probs = trained
            .model
            .image_probabilities(images, batch, &self.device)
            .await?;
        Ok(ranked(probs, &trained.labels))
    }

    /// Rank the classes for each text.
    pub async fn predict_texts(&mut self, texts: &[String]) -> Result<Vec<Vec<Scored>>> {
        self.predictor()?;
        let trained = self.trained()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let batch = self.batch(ModelKind::Text);
        let probs = trained
            .model
            .text_probabilities(&refs, batch, &self.device)
            .await?;
        Ok(ranked(probs, &trained.labels))
    }

    /// Rank the classes for each audio clip (16 kHz mono samples, e.g. from
    /// [`crate::data::audio::load`] or the page's microphone).
    pub async fn predict_audio(&mut self, clips: &[Vec<f32>]) -> Result<Vec<Vec<Scored>>> {
        self.predictor()?;
        let trained = self.trained()?;
        let batch = self.batch(ModelKind::Audio);
        let probs = trained
            .model
            .audio_probabilities(clips, batch, &self.device)
            .await?;
        Ok(ranked(probs, &trained.labels))
    }

    /// What a series model says about recordings (name, bytes of CSV/TSV/JSONL): class
    /// probabilities of each window, or the outputs at every step.
    pub async fn predict_series(
        &mut self,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<crate::train::series::SeriesPrediction>> {
        self.predictor()?;
        let trained = self.trained()?;
        let Model::Series(m) = &trained.model else {
            return Err(Error::Data(format!(
                "a {} model does not read recordings",
                trained.model.kind().name()
            )));
        };
        let mut recipe = match &trained.run {
            Some((recipe, _)) => recipe.clone(),
            None => Recipe::for_series(),
        };
        // Predictions need the channels only: no labels, no targets.
        recipe.series.targets = vec![];
        let files: Vec<(String, String, Vec<u8>)> =
            files.into_iter().map(|(n, b)| (n.clone(), n, b)).collect();
        let wanted = Wanted {
            channels: m.config.input.channels.clone(),
            label_column: None,
            targets: Vec::new(),
            rate_hz: m.config.input.rate_hz,
            declared_rate_hz: recipe.series.rate_hz,
            max_gap_s: recipe.series.max_gap_s,
        };
        let data = Recordings::read(files, &wanted)?;
        crate::train::series::predict_series(m, &data, &self.device).await
    }

    /// Transcripts of audio files (name, bytes) by the model that predicts (fine-tuned, or
    /// the loaded one as it is), or with `original` by the loaded model as it came (to set a
    /// fine-tuned model's transcript beside the one before). A file that cannot be decoded or
    /// is longer than 30 s is an error naming it.
    pub async fn transcribe(
        &mut self,
        files: Vec<(String, Vec<u8>)>,
        original: bool,
    ) -> Result<Vec<Transcript>> {
        let mut clips = Vec::with_capacity(files.len());
        for (name, bytes) in files {
            let samples = crate::data::transcripts::load_clip(bytes, &name)?;
            let seconds = samples.len() as f64 / f64::from(crate::data::mel::SAMPLE_RATE);
            clips.push((name, samples, seconds));
        }
        let base;
        let model = if original {
            let files = self
                .base
                .as_ref()
                .ok_or_else(|| Error::Data("no model is loaded".into()))?;
            base = Model::load(files, None, &self.device)?;
            &base
        } else {
            self.predictor()?;
            &self.trained()?.model
        };
        let Model::Transcription(m) = model else {
            return Err(Error::Data(format!(
                "a {} model does not transcribe speech",
                model.kind().name()
            )));
        };
        let refs: Vec<&[f32]> = clips.iter().map(|(_, s, _)| s.as_slice()).collect();
        let texts = m
            .transcribe(&refs, self.batch(ModelKind::Transcription), &self.device)
            .await?;
        Ok(clips
            .into_iter()
            .zip(texts)
            .map(|((name, _, seconds), text)| Transcript {
                name,
                text,
                seconds,
            })
            .collect())
    }

    /// The model that predicts (fine-tuned, loaded, or the base as it is) as files (names and bytes): model.safetensors under the
    /// checkpoint's own names, config.json with id2label, the tokenizer files for text, and
    /// report.json (`{recipe, report}`) after a run. The CLI writes them to a folder, the
    /// browser zips them.
    pub async fn export(&mut self) -> Result<Vec<(String, Vec<u8>)>> {
        self.export_with(false).await
    }

    /// [`Self::export`], whose report.json keeps the dataset's examples (misclassified names
    /// and texts, transcripts, files left out) when `examples` is true, as a person asked;
    /// by default an export holds nothing from the dataset.
    pub async fn export_with(&mut self, examples: bool) -> Result<Vec<(String, Vec<u8>)>> {
        self.export_parts(examples, false).await
    }

    /// [`Self::export_with`]; with `adapter_only`, PEFT's adapter folder alone (and config.json,
    /// the tokenizer, report.json) without the merged model.safetensors: the small download
    /// of a LoRA run, loaded onto the original model. A model without adapters is an error.
    pub async fn export_parts(
        &mut self,
        examples: bool,
        adapter_only: bool,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.predictor()?;
        let trained = self.trained()?;
        let run = trained.run.as_ref().map(|(recipe, report)| {
            let report = match examples {
                true => report.clone(),
                false => report.clone().without_examples(),
            };
            (recipe, report)
        });
        let run = run.as_ref().map(|(recipe, report)| (*recipe, report));
        let mut files = trained
            .model
            .files(&trained.labels, run, &trained.extras)
            .await?;
        if adapter_only {
            let adapter = format!("{}/", crate::models::lora::ADAPTER_DIR);
            if !files.iter().any(|(name, _)| name.starts_with(&adapter)) {
                return Err(Error::Data(
                    "this model has no adapters to export alone: train it with finetune.lora \
                     (the LoRA preset), or export the whole model"
                        .into(),
                ));
            }
            files.retain(|(name, _)| name != "model.safetensors");
        }
        Ok(files)
    }
}

fn check_kinds(kind: ModelKind, dataset: &Dataset) -> Result<()> {
    if kind != dataset.kind() {
        let data = match dataset.kind() {
            ModelKind::Image => "an image",
            ModelKind::Text => "a text",
            ModelKind::Audio => "an audio",
            ModelKind::Series => "a series",
            ModelKind::Transcription => "a transcribed audio",
        };
        return Err(Error::Data(format!(
            "a {} model cannot train on {data} dataset",
            kind.name()
        )));
    }
    Ok(())
}

fn mismatch(kind: ModelKind, dataset: &Dataset) -> Error {
    check_kinds(kind, dataset).expect_err("kinds differ")
}

/// The rest of `recipe` after its head phase: the fine-tuning phase on the model's head.
fn after_head(recipe: &Recipe) -> Recipe {
    Recipe {
        head: crate::train::HeadPhase {
            epochs: 0,
            ..recipe.head.clone()
        },
        // A run from scratch started in its first phase: the model is the run's now.
        series: crate::data::SeriesOptions {
            from_scratch: false,
            ..recipe.series.clone()
        },
        ..recipe.clone()
    }
}

/// `files` read for `model` and `recipe`: the recipe's channels (else the model's), the label
/// column for a classifier or the targets (the recipe's, else the model's output names) for a
/// regression, at the model's rate (or the data's own, for a model that reads `dt`).
pub(crate) fn series_recordings(
    model: &crate::models::SeriesModel,
    files: &[(String, String, Vec<u8>)],
    recipe: &Recipe,
) -> Result<Recordings> {
    use crate::models::series::SeriesOutput;
    let options = &recipe.series;
    let channels = if options.channels.is_empty() {
        model.config.input.channels.clone()
    } else {
        options.channels.clone()
    };
    let header_has = |column: &str| {
        files.iter().any(|(_, _, b)| {
            let line = b.split(|c| *c == b'\n').next().unwrap_or(&[]);
            String::from_utf8_lossy(line)
                .split([',', '\t'])
                .any(|c| c.trim().trim_matches('"') == column)
                || String::from_utf8_lossy(line).contains(&format!("\"{column}\""))
        })
    };
    let targets = if !options.targets.is_empty() {
        options.targets.clone()
    } else {
        match &model.config.output {
            SeriesOutput::Values { names, .. } => names.clone(),
            SeriesOutput::Classes { .. } => Vec::new(),
        }
    };
    let classify = targets.is_empty()
        || (options.targets.is_empty()
            && !targets.iter().all(|t| header_has(t))
            && header_has(&options.label_column));
    let wanted = Wanted {
        channels,
        label_column: classify.then(|| options.label_column.clone()),
        targets: if classify { Vec::new() } else { targets },
        rate_hz: model.config.input.rate_hz,
        declared_rate_hz: options.rate_hz,
        max_gap_s: options.max_gap_s,
    };
    Recordings::read(files.to_vec(), &wanted)
}
