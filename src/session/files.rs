//! What a model is: its files (weights, config.json, the tokenizer and its companions) from a
//! folder, a weights file, or named byte blobs (the browser's), and the one rule that says
//! which kind of model they hold.

use serde::{Deserialize, Serialize};

use crate::models::{ModelInfo, describe};
use crate::weights::WeightSource;
use crate::{Error, Result};

/// The tokenizer's companions a Hugging Face folder carries (AutoTokenizer looks for them);
/// kept with a text model and exported with it.
pub const TOKENIZER_EXTRAS: [&str; 3] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// The kinds of model tabtune fine-tunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// An image classifier (CNN backbone).
    Image,
    /// A BERT-family text encoder or classifier.
    Text,
    /// The speech_embedding network or a classifier on it (sounds, spoken words).
    Audio,
    /// A config-described network over numeric recordings (sensors, robot state).
    Series,
    /// A speech recogniser (Whisper): audio in, text out.
    Transcription,
}

impl ModelKind {
    /// What its examples are called: "images" or "texts".
    pub fn unit(self) -> &'static str {
        match self {
            Self::Image => "images",
            Self::Text => "texts",
            Self::Audio => "clips",
            Self::Series => "windows",
            Self::Transcription => "clips",
        }
    }

    /// "image" or "text".
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
            Self::Audio => "audio",
            Self::Series => "series",
            Self::Transcription => "transcription",
        }
    }

    /// The kind `name` spells ("image" or "text").
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "image" => Ok(Self::Image),
            "text" => Ok(Self::Text),
            "audio" => Ok(Self::Audio),
            "series" => Ok(Self::Series),
            "transcription" => Ok(Self::Transcription),
            other => Err(Error::Data(format!(
                "unknown model kind \"{other}\": \"image\", \"text\", \"audio\", \"series\" \
                 or \"transcription\""
            ))),
        }
    }

    /// The recipe defaults of this kind.
    pub fn modality(self) -> crate::train::Modality {
        match self {
            Self::Image => crate::train::Modality::Image,
            Self::Text => crate::train::Modality::Text,
            Self::Audio => crate::train::Modality::Audio,
            Self::Series => crate::train::Modality::Series,
            Self::Transcription => crate::train::Modality::Transcription,
        }
    }
}

/// The files of one model, and what they hold (decided once, when they are gathered).
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// A name for messages: the folder or file, or the name the page gave.
    pub name: String,
    /// The weights (.safetensors or .pth).
    pub weights: WeightSource,
    /// Size of the weights in bytes.
    pub weights_len: usize,
    /// config.json's text, if there is one.
    pub config: Option<String>,
    /// tokenizer.json's bytes (text models).
    pub tokenizer: Option<Vec<u8>>,
    /// Other files exported with the model (the tokenizer's companions).
    pub extras: Vec<(String, Vec<u8>)>,
    /// What the files hold, from their contents.
    pub info: ModelInfo,
    /// A PEFT LoRA adapter to put onto these weights (see [`Self::with_adapter`]).
    pub adapter: Option<crate::models::lora::PeftAdapter>,
}

impl ModelFiles {
    /// Gather the files and decide what they hold. The rule, the same for every front end:
    /// tensor names of a known image architecture make an image model; otherwise a config.json
    /// with a `model_type` (BERT family) makes a text model, which needs its tokenizer.json.
    /// `expected`: the kind the caller asked for, if any (a mismatch is an error naming both).
    pub fn new(
        name: &str,
        weights: WeightSource,
        weights_len: usize,
        config: Option<String>,
        tokenizer: Option<Vec<u8>>,
        extras: Vec<(String, Vec<u8>)>,
        expected: Option<ModelKind>,
    ) -> Result<Self> {
        let mut info = describe(&weights, weights_len, config.as_deref())?;
        info.name = name.to_string();
        let files = Self {
            name: name.to_string(),
            weights,
            weights_len,
            config,
            tokenizer,
            extras,
            info,
            adapter: None,
        };
        let kind = files.kind();
        if let Some(expected) = expected.filter(|&e| e != kind) {
            return Err(Error::Weights {
                file: name.into(),
                message: format!(
                    "expected a {} model, the files hold a {} model ({})",
                    expected.name(),
                    kind.name(),
                    files.info.arch
                ),
            });
        }
        if matches!(kind, ModelKind::Text | ModelKind::Transcription) && files.tokenizer.is_none() {
            return Err(Error::Weights {
                file: name.into(),
                message: format!("a {} model needs its tokenizer.json", kind.name()),
            });
        }
        Ok(files)
    }

    /// These weights with PEFT's adapter folder (`adapter_config.json`, `adapter_model.safetensors`
    /// bytes, `name` for messages) on top: an image, text, sensor or Whisper model predicts
    /// with it and trains it further (the recipe's adapters are then the file's). A new head in
    /// the adapter (`modules_to_save`) replaces the model's; its classes are named by index
    /// unless the model's config names as many.
    pub fn with_adapter(mut self, name: &str, config: &str, weights: &[u8]) -> Result<Self> {
        if self.kind() == ModelKind::Audio {
            return Err(Error::Weights {
                file: name.into(),
                message: "adapters go onto image, text, sensor and Whisper models, not onto \
                          the audio classifier (its convolutions take none)"
                    .into(),
            });
        }
        let adapter = crate::models::lora::PeftAdapter::parse(name, config, weights)?;
        if let Some(classes) = adapter.head_classes() {
            if self
                .info
                .classes
                .as_ref()
                .is_none_or(|c| c.len() != classes)
            {
                self.info.classes = Some((0..classes).map(|i| i.to_string()).collect());
            }
        }
        self.info.adapter_layers = adapter.options.target_modules.as_ref().map(Vec::len);
        self.adapter = Some(adapter);
        Ok(self)
    }

    /// From named blobs (the browser's files): `model.safetensors` (or one `.safetensors` /
    /// `.pth` / `.pt`), `config.json`, `tokenizer.json`, and any others (kept as extras).
    pub fn from_named(
        name: &str,
        files: Vec<(String, Vec<u8>)>,
        expected: Option<ModelKind>,
    ) -> Result<Self> {
        let mut weights = None;
        let (mut config, mut tokenizer, mut extras) = (None, None, Vec::new());
        for (file, bytes) in files {
            let is_weights = [".safetensors", ".pth", ".pt", ".bin"]
                .iter()
                .any(|e| file.ends_with(e));
            match file.as_str() {
                "config.json" => {
                    config = Some(String::from_utf8(bytes).map_err(|_| Error::Weights {
                        file: format!("{name}/config.json"),
                        message: "not UTF-8 text".into(),
                    })?)
                }
                "tokenizer.json" => tokenizer = Some(bytes),
                _ if is_weights && (weights.is_none() || file == "model.safetensors") => {
                    weights = Some((file, bytes))
                }
                _ => extras.push((file, bytes)),
            }
        }
        let (file, bytes) = weights.ok_or_else(|| Error::Weights {
            file: name.into(),
            message: "no weights among the model's files (model.safetensors or a .pth)".into(),
        })?;
        let len = bytes.len();
        let weights = WeightSource::Bytes {
            name: format!("{name}/{file}"),
            bytes,
        };
        Self::new(name, weights, len, config, tokenizer, extras, expected)
    }

    /// A folder holding model.safetensors (or a .pth), config.json, tokenizer.json and its
    /// companions: the whole model. A weights file: that file, with the config.json beside it
    /// only when that one names the classes (an image classifier tabtune or HF exported).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let read = |p: &std::path::Path| -> Result<Option<Vec<u8>>> {
            match std::fs::read(p) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::Weights {
                    file: p.display().to_string(),
                    message: format!("cannot read: {e}"),
                }),
            }
        };
        let weights = if path.is_dir() {
            weights_in(path)?
        } else {
            path.to_path_buf()
        };
        let len = std::fs::metadata(&weights)
            .map_err(|e| Error::Weights {
                file: weights.display().to_string(),
                message: format!("cannot read: {e}"),
            })?
            .len() as usize;
        let dir = weights.parent().unwrap_or(std::path::Path::new("."));
        let mut config = match read(&dir.join("config.json"))? {
            Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| Error::Weights {
                file: dir.join("config.json").display().to_string(),
                message: "not UTF-8 text".into(),
            })?),
            None => None,
        };
        let (mut tokenizer, mut extras) = (None, Vec::new());
        if path.is_dir() {
            tokenizer = read(&dir.join("tokenizer.json"))?;
            if tokenizer.is_some() {
                for name in TOKENIZER_EXTRAS
                    .iter()
                    .chain(&crate::models::whisper::EXTRAS)
                    .collect::<std::collections::BTreeSet<_>>()
                {
                    if let Some(bytes) = read(&dir.join(name))? {
                        extras.push((name.to_string(), bytes));
                    }
                }
            }
        } else if !config.as_deref().is_some_and(names_classes) {
            // A weights file alone: the config.json beside it counts only when it names the
            // classes of this classifier.
            config = None;
        }
        Self::new(
            &path.display().to_string(),
            WeightSource::Path(weights),
            len,
            config,
            tokenizer,
            extras,
            None,
        )
    }

    /// Image, text or audio.
    pub fn kind(&self) -> ModelKind {
        match self.info.kind.as_str() {
            "text" => ModelKind::Text,
            "audio" => ModelKind::Audio,
            "series" => ModelKind::Series,
            "transcription" => ModelKind::Transcription,
            _ => ModelKind::Image,
        }
    }

    /// The class names of a fine-tuned classifier (config.json's id2label), if it is one.
    pub fn labels(&self) -> Option<&[String]> {
        self.info.classes.as_deref()
    }

    /// The name a file of the model is given in messages.
    pub(crate) fn file_name(&self, file: &str) -> String {
        match &self.weights {
            WeightSource::Path(p) => p
                .parent()
                .map_or_else(|| file.to_string(), |d| d.join(file).display().to_string()),
            WeightSource::Bytes { .. } => format!("{}/{file}", self.name),
        }
    }
}

/// The weights inside a model folder: model.safetensors, else the first .pth / .pt.
#[cfg(not(target_arch = "wasm32"))]
fn weights_in(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.exists() {
        return Ok(safetensors);
    }
    let mut pths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Weights {
            file: dir.display().to_string(),
            message: format!("cannot list: {e}"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pth" || e == "pt"))
        .collect();
    pths.sort();
    pths.into_iter().next().ok_or_else(|| Error::Weights {
        file: dir.display().to_string(),
        message: "no model.safetensors or .pth file in this folder".into(),
    })
}

/// True when config.json's text has an `id2label` map.
#[cfg(not(target_arch = "wasm32"))]
fn names_classes(config: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(config)
        .is_ok_and(|v| v.get("id2label").is_some_and(|m| m.is_object()))
}
