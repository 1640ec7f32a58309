//! A loaded model of either kind: load from its files, class probabilities (one predict for
//! every front end), and its export as files (one layout for every front end).

use burn::prelude::*;
use burn::tensor::TensorData;
use image::RgbImage;
use serde::Serialize;

use super::files::{ModelFiles, ModelKind};
use crate::models::{AudioModel, Head, ImageModel, ModelConfig, SeriesModel, TextModel, lora};
use crate::train::{Recipe, RunReport};
use crate::{Error, Result};

/// A model on the device.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Model {
    /// An image classifier.
    Image(ImageModel),
    /// A text encoder with its head and tokenizer.
    Text(TextModel),
    /// The speech_embedding network with its head.
    Audio(AudioModel),
    /// A config-described network over numeric recordings.
    Series(SeriesModel),
    /// A speech recogniser (Whisper) with its tokenizer.
    Transcription(crate::models::whisper::Transcriber),
}

/// What a LoRA phase trains, told before it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoraPlan {
    /// Layers that get an adapter.
    pub layers: usize,
    /// The adapters' parameters.
    pub adapter_params: usize,
    /// The new head's parameters (PEFT's `modules_to_save`).
    pub head_params: usize,
    /// Every parameter of the model (BatchNorm statistics included).
    pub model_params: usize,
    /// The adapter folder's weights (float32), about.
    pub adapter_bytes: usize,
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// The class name.
    pub label: String,
    /// Its probability.
    pub probability: f32,
}

/// "label 97.1%, label 2.9%" for the `n` most probable classes of `scored`.
pub fn top(scored: &[Scored], n: usize) -> String {
    let shown: Vec<String> = scored
        .iter()
        .take(n.max(1))
        .map(|s| format!("{} {:.1}%", s.label, s.probability * 100.0))
        .collect();
    shown.join(", ")
}

/// Each row of probabilities as (label, probability), most probable first.
pub fn ranked(rows: Vec<Vec<f32>>, labels: &[String]) -> Vec<Vec<Scored>> {
    rows.into_iter()
        .map(|p| {
            let mut r: Vec<Scored> = p
                .into_iter()
                .zip(labels)
                .map(|(probability, label)| Scored {
                    label: label.clone(),
                    probability,
                })
                .collect();
            r.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            r
        })
        .collect()
}

impl Model {
    /// Load `files` on `device`: a text or audio model with `recipe`'s text or audio options
    /// (`None`: those a tabtune export was trained with, else the defaults).
    pub fn load(files: &ModelFiles, recipe: Option<&Recipe>, device: &Device) -> Result<Self> {
        // A text model's options: the recipe's, else the adapter's (see `text_options`).
        let adapter_text = files.adapter.as_ref().and_then(|a| a.text_options());
        let model = Self::load_base(files, recipe, adapter_text.as_ref(), device)?;
        match &files.adapter {
            Some(adapter) => model.with_adapter(adapter),
            None => Ok(model),
        }
    }

    /// `adapter` put onto this model: its layers' adapters, and its head in place of the
    /// model's when it carries one (a Linear `[classes, features]` under the classifier's
    /// checkpoint name).
    fn with_adapter(self, adapter: &lora::PeftAdapter) -> Result<Self> {
        let head_of = |rest: Vec<(String, Vec<usize>, Vec<f32>)>,
                       weight_key: &str,
                       features: usize,
                       device: &Device|
         -> Result<Option<Head>> {
            if rest.is_empty() {
                return Ok(None);
            }
            let bias_key = weight_key.replace(".weight", ".bias");
            let fail = |message: String| Error::Weights {
                file: format!("{}/adapter_model.safetensors", adapter.name),
                message,
            };
            let find = |key: &str| rest.iter().find(|(k, _, _)| k == key);
            let (_, shape, weight) = head_tensor(&rest, weight_key).map_err(fail)?;
            if shape.len() != 2 || shape[1] != features {
                return Err(fail(format!(
                    "`{weight_key}` is {shape:?}; the head takes {features} features"
                )));
            }
            if let Some((k, _, _)) = rest
                .iter()
                .find(|(k, _, _)| k != weight_key && *k != bias_key)
            {
                return Err(fail(format!("`{k}` has no place in this model")));
            }
            let classes = shape[0];
            let bias = match find(&bias_key) {
                Some((_, _, b)) if b.len() == classes => b.clone(),
                Some((_, s, _)) => return Err(fail(format!("`{bias_key}` is {s:?}"))),
                None => vec![0.0; classes],
            };
            let linear = burn::nn::Linear {
                // PyTorch's [out, in] to burn's [in, out].
                weight: burn::module::Param::from_tensor(
                    Tensor::<2>::from_data(
                        TensorData::new(weight.clone(), [classes, features]),
                        device,
                    )
                    .transpose(),
                ),
                bias: Some(burn::module::Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias, [classes]),
                    device,
                ))),
            };
            Ok(Some(Head::from_linear(linear)))
        };
        match self {
            Self::Image(mut m) => {
                let rest = adapter.apply(&mut m)?;
                let device = m.head().linear.weight.device();
                let key = m.arch().classifier_key();
                Ok(Self::Image(
                    match head_of(rest, key, m.feature_dim(), &device)? {
                        Some(head) => m.with_head(head),
                        None => m,
                    },
                ))
            }
            Self::Text(mut m) => {
                let rest = adapter.apply(&mut m.net)?;
                let device = m.net.classifier.linear.weight.device();
                let features = m.feature_dim();
                Ok(Self::Text(
                    match head_of(rest, "classifier.weight", features, &device)? {
                        Some(head) => {
                            let classes = head.classes();
                            let mut m = m.with_head(head);
                            // PEFT's folder has no class names: by index, unless the
                            // model's config names as many.
                            if m.labels.as_ref().is_none_or(|l| l.len() != classes) {
                                m.labels = Some((0..classes).map(|i| i.to_string()).collect());
                            }
                            m
                        }
                        None => m,
                    },
                ))
            }
            Self::Transcription(mut m) => {
                if let Some((key, _, _)) = adapter.apply(&mut m.net)?.first() {
                    return Err(Error::Weights {
                        file: format!("{}/adapter_model.safetensors", adapter.name),
                        message: format!(
                            "`{key}` has no place in an adapter for Whisper (it has no new \
                             head; modules_to_save is not read)"
                        ),
                    });
                }
                Ok(Self::Transcription(m))
            }
            Self::Series(m) => Ok(Self::Series(series_with_adapter(m, adapter)?)),
            Self::Audio(_) => Err(Error::Weights {
                file: adapter.name.clone(),
                message: "adapters go onto image, text, sensor and Whisper models, not onto \
                          the audio classifier (its convolutions take none)"
                    .into(),
            }),
        }
    }

    fn load_base(
        files: &ModelFiles,
        recipe: Option<&Recipe>,
        adapter_text: Option<&crate::models::TextOptions>,
        device: &Device,
    ) -> Result<Self> {
        let text = recipe.map(|r| &r.text).or(adapter_text);
        match files.kind() {
            ModelKind::Audio => Ok(Self::Audio(AudioModel::load(
                &files.weights,
                files
                    .config
                    .as_deref()
                    .map(|c| (c, files.file_name("config.json")))
                    .as_ref()
                    .map(|(c, n)| (*c, n.as_str())),
                recipe.map(|r| &r.audio),
                device,
            )?)),
            ModelKind::Image => Ok(Self::Image(ImageModel::load(&files.weights, device)?.0)),
            ModelKind::Series => {
                let config = files.config.as_deref().ok_or_else(|| Error::Weights {
                    file: files.name.clone(),
                    message: "a series model needs its config.json (its layers)".into(),
                })?;
                Ok(Self::Series(SeriesModel::load(
                    &files.weights,
                    (config, &files.file_name("config.json")),
                    device,
                )?))
            }
            ModelKind::Transcription => {
                let config = files.config.as_deref().ok_or_else(|| Error::Weights {
                    file: files.name.clone(),
                    message: "a Whisper model needs its config.json".into(),
                })?;
                let tokenizer = files.tokenizer.as_deref().ok_or_else(|| Error::Weights {
                    file: files.name.clone(),
                    message: "a Whisper model needs its tokenizer.json".into(),
                })?;
                Ok(Self::Transcription(
                    crate::models::whisper::Transcriber::load(
                        config,
                        &files.file_name("config.json"),
                        tokenizer,
                        &files.file_name("tokenizer.json"),
                        &files.weights,
                        files.extras.clone(),
                        device,
                    )?,
                ))
            }
            ModelKind::Text => {
                let config = files.config.as_deref().ok_or_else(|| Error::Weights {
                    file: files.name.clone(),
                    message: "a text model needs its config.json".into(),
                })?;
                let tokenizer = files.tokenizer.as_deref().ok_or_else(|| Error::Weights {
                    file: files.name.clone(),
                    message: "a text model needs its tokenizer.json".into(),
                })?;
                Ok(Self::Text(TextModel::load(
                    config,
                    &files.file_name("config.json"),
                    tokenizer,
                    &files.file_name("tokenizer.json"),
                    &files.weights,
                    text,
                    device,
                )?))
            }
        }
    }

    /// What `recipe`'s adapters would be on this model (`None` without adapters), `classes`
    /// outputs for the new head: checked before any training, so that targets matching no
    /// layer, or adapters on a kind of model that takes none, are refused up front.
    pub fn lora_plan(&self, recipe: &Recipe, classes: usize) -> Result<Option<LoraPlan>> {
        let Some(options) = recipe.finetune.as_ref().and_then(|f| f.lora.as_ref()) else {
            return Ok(None);
        };
        // Layers adapted, the adapters' parameters, the new head's, the model's.
        let plan = |net: &mut dyn lora::Adaptable, head: usize, all: usize| -> Result<_> {
            let layers = lora::add_adapters(net, options, recipe.seed)?.len();
            Ok((layers, lora::adapter_params(net), head, all))
        };
        let (layers, adapter_params, head_params, model_params) = match self {
            Self::Image(m) => {
                let head = (m.feature_dim() + 1) * classes;
                plan(&mut m.clone(), head, m.num_params())?
            }
            Self::Text(m) => {
                let head = (m.feature_dim() + 1) * classes;
                plan(&mut m.net.clone(), head, m.net.num_params())?
            }
            Self::Series(m) => {
                // The head's parameters scale with its outputs (exact for Linear and Conv1d).
                let at = m.config.head_index();
                let now: usize = m.net.layers[at..].iter().map(|l| l.num_params()).sum();
                let width = m.config.output.width().max(1);
                let head = now / width * classes.max(1);
                plan(&mut m.net.clone(), head, m.net.num_params())?
            }
            Self::Transcription(m) => {
                if recipe.head.epochs > 0 {
                    return Err(Error::Recipe {
                        field: "head.epochs".into(),
                        message: "Whisper's first phase trains the decoder's own weights, \
                                  which an adapter does not hold: with finetune.lora set \
                                  head.epochs to 0 (adapters from the start)"
                            .into(),
                    });
                }
                plan(&mut m.net.clone(), 0, m.net.num_params())?
            }
            Self::Audio(_) => {
                return Err(Error::Recipe {
                    field: "finetune.lora".into(),
                    message: "the audio classifier's network is convolutions with kernels \
                              larger than 1x1, where LoRA adapters do not go: it trains its \
                              weights (set finetune.lora to null)"
                        .into(),
                });
            }
        };
        Ok(Some(LoraPlan {
            layers,
            adapter_params,
            head_params,
            model_params,
            adapter_bytes: 4 * (adapter_params + head_params),
        }))
    }

    /// Image, text or audio.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Image(_) => ModelKind::Image,
            Self::Text(_) => ModelKind::Text,
            Self::Audio(_) => ModelKind::Audio,
            Self::Series(_) => ModelKind::Series,
            Self::Transcription(_) => ModelKind::Transcription,
        }
    }

    /// Outputs of the classifier.
    pub fn outputs(&self) -> usize {
        match self {
            Self::Image(m) => m.classes(),
            Self::Text(m) => m.net.classifier.classes(),
            Self::Audio(m) => m.net.classifier.classes(),
            Self::Series(m) => m.config.output.width(),
            // A speech recogniser has no classifier.
            Self::Transcription(_) => 0,
        }
    }

    /// Class probabilities of decoded images, `batch` at a time (frozen BatchNorm folded).
    pub async fn image_probabilities(
        &self,
        images: Vec<RgbImage>,
        batch: usize,
        device: &Device,
    ) -> Result<Vec<Vec<f32>>> {
        let Self::Image(model) = self else {
            return Err(Error::Data(format!(
                "a {} model cannot classify images",
                self.kind().name()
            )));
        };
        let model = model.folded();
        let pre = model.arch().preprocess();
        let side = pre.crop as usize;
        let mut out = Vec::with_capacity(images.len());
        let mut images = images.into_iter().peekable();
        while images.peek().is_some() {
            let chunk: Vec<RgbImage> = images.by_ref().take(batch.max(1)).collect();
            let n = chunk.len();
            let pixels: Vec<f32> = chunk.into_iter().flat_map(|i| pre.rgb(i, None)).collect();
            let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, side, side]), device);
            out.extend(crate::train::run::probabilities(model.forward(x)).await?);
        }
        Ok(out)
    }

    /// Class probabilities of texts, `batch` at a time.
    pub async fn text_probabilities(
        &self,
        texts: &[&str],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<Vec<f32>>> {
        let Self::Text(model) = self else {
            return Err(Error::Data(format!(
                "a {} model cannot classify texts",
                self.kind().name()
            )));
        };
        crate::train::text::predict(&model.net, &model.tokenizer, texts, batch, device).await
    }

    /// Class probabilities of audio clips (16 kHz samples), each the mean over its windows
    /// (the model's own window length; a clip up to one window long is one window).
    pub async fn audio_probabilities(
        &self,
        clips: &[Vec<f32>],
        batch: usize,
        device: &Device,
    ) -> Result<Vec<Vec<f32>>> {
        let Self::Audio(model) = self else {
            return Err(Error::Data(format!(
                "a {} model cannot classify audio",
                self.kind().name()
            )));
        };
        let options = crate::data::AudioOptions {
            drop_silence: false,
            ..model.options.clone()
        };
        let front = crate::data::mel::LogMel::new();
        let mut out = Vec::with_capacity(clips.len());
        for clip in clips {
            let windows = crate::data::audio::windows(clip, &options);
            let refs: Vec<&[f32]> = windows.iter().map(|(_, w)| w.as_slice()).collect();
            let probs =
                crate::train::audio::predict(&model.net, &front, &refs, batch, device).await?;
            let k = probs.first().map_or(0, Vec::len);
            let mut mean = vec![0.0f32; k];
            for p in &probs {
                for (m, v) in mean.iter_mut().zip(p) {
                    *m += v / probs.len() as f32;
                }
            }
            out.push(mean);
        }
        Ok(out)
    }

    /// The model's files under its checkpoint's own names: model.safetensors (read back from
    /// the device first: WebGPU reads are async), config.json with `labels`, the tokenizer and
    /// `extras` for text, and report.json (`{recipe, report}`) after a run.
    pub async fn files(
        &self,
        labels: &[String],
        run: Option<(&Recipe, &RunReport)>,
        extras: &[(String, Vec<u8>)],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let metadata = [("format", "pt".to_string())];
        let dropout = run
            .and_then(|(recipe, _)| recipe.finetune.as_ref())
            .and_then(|f| f.lora.as_ref())
            .map_or(0.0, |l| l.dropout);
        let mut files = match self {
            Self::Image(m) => {
                let mut host = m.to_host().await?;
                let full = host.to_safetensors(&metadata)?;
                let head = host.arch().classifier_module();
                let adapter = lora::peft_files(&mut host, &full, Some(head), None, dropout, None)?;
                let mut files = vec![
                    ("model.safetensors".to_string(), full),
                    (
                        "config.json".into(),
                        ModelConfig::new(m.arch(), labels).to_json().into_bytes(),
                    ),
                ];
                files.extend(adapter.into_iter().flatten());
                files
            }
            Self::Text(m) => {
                let mut host = m.to_host().await?;
                let full = host.to_safetensors(&metadata)?;
                let options = serde_json::to_string(&m.options).ok();
                let (net, seq) = (&mut host.net, Some("SEQ_CLS"));
                let adapter =
                    lora::peft_files(net, &full, Some("classifier"), seq, dropout, options)?;
                let mut files = vec![
                    ("model.safetensors".to_string(), full),
                    ("config.json".into(), pretty(&m.hf_config(labels))?),
                    ("tokenizer.json".into(), m.tokenizer.json.clone()),
                ];
                files.extend(adapter.into_iter().flatten());
                files
            }
            Self::Audio(m) => vec![
                (
                    "model.safetensors".to_string(),
                    m.to_host().await?.to_safetensors(&metadata)?,
                ),
                ("config.json".into(), pretty(&m.config(labels))?),
            ],
            Self::Series(m) => {
                let mut host = m.to_host().await?;
                let full = host.to_safetensors(&metadata)?;
                let head = host.head_name().map(str::to_string);
                let net = &mut host.net;
                let adapter = lora::peft_files(net, &full, head.as_deref(), None, dropout, None)?;
                let mut files = vec![
                    ("model.safetensors".to_string(), full),
                    ("config.json".into(), m.config_json().into_bytes()),
                ];
                files.extend(adapter.into_iter().flatten());
                files
            }
            // config.json, tokenizer.json and the companions come with it.
            Self::Transcription(m) => m.to_host().await?.export(&[], dropout)?,
        };
        if let Some((recipe, report)) = run {
            let json = serde_json::json!({ "recipe": recipe, "report": report });
            files.push(("report.json".into(), pretty(&json)?));
        }
        if matches!(self, Self::Text(_)) {
            for (name, bytes) in extras {
                if !files.iter().any(|(n, _)| n == name) {
                    files.push((name.clone(), bytes.clone()));
                }
            }
        }
        Ok(files)
    }
}

/// `adapter` put onto a series model: its adapters, and its head (PEFT's `modules_to_save`,
/// under the head layer's checkpoint name) in place of the model's, with a new head of as many
/// outputs first when it has another number (classes then named by index).
fn series_with_adapter(m: SeriesModel, adapter: &lora::PeftAdapter) -> Result<SeriesModel> {
    let file = format!("{}/adapter_model.safetensors", adapter.name);
    let fail = |message: String| Error::Weights {
        file: file.clone(),
        message,
    };
    let mut net = m.net.clone();
    let rest = adapter.apply(&mut net)?;
    if rest.is_empty() {
        return Ok(SeriesModel { net, ..m });
    }
    let weight = format!("{}.weight", m.head_name().unwrap_or_default());
    let (_, shape, _) = head_tensor(&rest, &weight).map_err(fail)?;
    let device = m.net.layers[0]
        .devices()
        .first()
        .cloned()
        .unwrap_or_default();
    let outputs = shape[0];
    let m = match &m.config.output {
        crate::models::series::SeriesOutput::Classes { labels, activation }
            if labels.len() != outputs =>
        {
            let output = crate::models::series::SeriesOutput::Classes {
                labels: (0..outputs).map(|i| i.to_string()).collect(),
                activation: activation.clone(),
            };
            m.with_output(output, 0, &device)
        }
        _ => m,
    };
    // The model's own tensors with the adapter's in their place, loaded as a checkpoint (every
    // shape checked against config.json's layers).
    let base = m.to_safetensors(&[])?;
    let base = safetensors::SafeTensors::deserialize(&base)
        .map_err(|e| fail(format!("cannot read the model's own weights: {e}")))?;
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = base
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for (key, shape, values) in rest {
        let Some(slot) = tensors.iter_mut().find(|(k, _, _)| *k == key) else {
            return Err(fail(format!("`{key}` has no place in this model")));
        };
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        *slot = (key, shape, bytes);
    }
    let bytes = crate::weights::f32_safetensors(&tensors, None).map_err(fail)?;
    let source = crate::weights::WeightSource::Bytes {
        name: file.clone(),
        bytes,
    };
    let mut loaded = SeriesModel::load(&source, (&m.config_json(), "config.json"), &device)?;
    adapter.apply(&mut loaded.net)?;
    Ok(loaded)
}

/// The new head's weight `key` among an adapter's tensors that are not adapters (PEFT's
/// `modules_to_save`); missing, the message names what the adapter holds instead.
fn head_tensor<'a>(
    rest: &'a [(String, Vec<usize>, Vec<f32>)],
    key: &str,
) -> std::result::Result<&'a (String, Vec<usize>, Vec<f32>), String> {
    rest.iter().find(|(k, _, _)| k == key).ok_or_else(|| {
        let held: Vec<&str> = rest.iter().map(|(k, _, _)| k.as_str()).collect();
        format!(
            "it holds {} but no `{key}`, the new head this model takes",
            held.join(", ")
        )
    })
}

fn pretty(value: &serde_json::Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::Data(format!("cannot write JSON: {e}")))
}
