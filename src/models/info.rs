//! What a checkpoint is, read from its tensor names and shapes (no tensor data) and its
//! config.json: shown to a person before any training starts.

use serde::Serialize;

use super::{Arch, text::id2label};
use crate::weights::{WeightSource, inspect};
use crate::{Error, Result};

/// A checkpoint, described.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// "image", "text" or "audio".
    pub kind: String,
    /// The file's name.
    pub name: String,
    /// Architecture: an image architecture's name, or config.json's `model_type` (bert).
    pub arch: String,
    /// Learnable values (BatchNorm running statistics and other buffers left out).
    pub parameters: usize,
    /// Tensors in the file.
    pub tensors: usize,
    /// Size of the weights in bytes.
    pub bytes: usize,
    /// Outputs of the classifier the file holds; `None` for an encoder alone.
    pub outputs: Option<usize>,
    /// Class names of a fine-tuned classifier (config.json's id2label).
    pub classes: Option<Vec<String>>,
    /// Series models: what the network reads (channels, rate, window, normalisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_input: Option<super::series::SeriesInput>,
    /// Series models: what the network gives (classes, or values per window or per step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_output: Option<super::series::SeriesOutput>,
    /// With a LoRA adapter put onto the model: the layers it adapts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_layers: Option<usize>,
}

impl ModelInfo {
    /// As text: "mobilenet_v2 from DIR (image kind, 3504872 parameters, 314 tensors)".
    pub fn describe(&self, from: &str) -> String {
        let classes = self.classes.as_ref();
        let classes = classes.map_or(String::new(), |c| format!(", {} classes", c.len()));
        format!(
            "{} from {from} ({} kind, {} parameters, {} tensors{classes})",
            self.arch, self.kind, self.parameters, self.tensors
        )
    }
}

/// Buffers, not parameters.
const BUFFERS: [&str; 4] = [
    "running_mean",
    "running_var",
    "num_batches_tracked",
    "position_ids",
];

/// Describe the checkpoint in `weights` of `bytes` bytes with its config.json text, if any.
/// Image architectures are told from the tensor names; anything else needs a config.json with
/// a `model_type` (BERT-style text encoders).
pub fn describe(weights: &WeightSource, bytes: usize, config: Option<&str>) -> Result<ModelInfo> {
    let keys = inspect(weights)?;
    let parameters = keys
        .iter()
        .filter(|(k, _)| !BUFFERS.iter().any(|b| k.ends_with(b)))
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    let config_name = "config.json";
    let config: Option<serde_json::Value> = config
        .map(|text| {
            serde_json::from_str(text).map_err(|err| Error::Weights {
                file: config_name.into(),
                message: err.to_string(),
            })
        })
        .transpose()?;
    let labels = |n: usize| -> Result<Option<Vec<String>>> {
        match config.as_ref().and_then(|c| c.get("id2label")) {
            Some(map) => id2label(map, n, config_name).map(Some),
            None => Ok(None),
        }
    };
    let series = config
        .as_ref()
        .filter(|c| c.get("architecture").and_then(|a| a.as_str()) == Some("series"));
    if let Some(c) = series {
        let text = serde_json::to_string(c).unwrap_or_default();
        let parsed = super::series::SeriesConfig::parse(&text, config_name)?;
        return Ok(ModelInfo {
            kind: "series".into(),
            name: weights.name(),
            arch: parsed.name.clone().unwrap_or_else(|| "series".into()),
            parameters,
            tensors: keys.len(),
            bytes,
            outputs: Some(parsed.output.width()),
            classes: match &parsed.output {
                super::series::SeriesOutput::Classes { labels, .. } => Some(labels.clone()),
                super::series::SeriesOutput::Values { .. } => None,
            },
            series_input: Some(parsed.input.clone()),
            series_output: Some(parsed.output.clone()),
            adapter_layers: None,
        });
    }
    let (kind, arch, outputs) = if let Some(arch) = Arch::detect(&keys) {
        let outputs = keys
            .get(arch.classifier_key())
            .and_then(|s| s.first().copied());
        ("image", arch.name().to_string(), outputs)
    } else if super::speech_embedding::detect(&keys) {
        let outputs = keys
            .get("classifier.weight")
            .or_else(|| keys.get("classifier.out_proj.weight"))
            .and_then(|s| s.first().copied());
        ("audio", "speech_embedding".to_string(), outputs)
    } else if config
        .as_ref()
        .and_then(|c| c.get("model_type"))
        .and_then(|t| t.as_str())
        == Some("whisper")
    {
        let vocab = keys
            .get("model.decoder.embed_tokens.weight")
            .and_then(|s| s.first().copied());
        ("transcription", "whisper".to_string(), vocab)
    } else if let Some(model_type) = config
        .as_ref()
        .and_then(|c| c.get("model_type"))
        .and_then(|t| t.as_str())
    {
        let outputs = keys
            .get("classifier.weight")
            .or_else(|| keys.get("classifier.out_proj.weight"))
            .and_then(|s| s.first().copied());
        ("text", model_type.to_string(), outputs)
    } else {
        return Err(Error::Weights {
            file: weights.name(),
            message: format!(
                "not a known image architecture (MobileNetV2, EfficientNet-Lite0, ResNet-18/34/50 \
                 by their tensor names; this file's start with {}), nor the speech_embedding network \
                 (conv.0 ... conv.19), nor a text encoder (a \
                 BERT-family model folder: config.json with a model_type, and tokenizer.json), \
                 nor Whisper (config.json with model_type whisper)",
                keys.keys().take(3).cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    };
    // ImageNet checkpoints have no id2label; a fine-tuned model's config.json has one.
    let classes = match outputs {
        Some(n) => labels(n)?,
        None => None,
    };
    Ok(ModelInfo {
        kind: kind.into(),
        name: weights.name(),
        arch,
        parameters,
        tensors: keys.len(),
        bytes,
        outputs,
        classes,
        series_input: None,
        series_output: None,
        adapter_layers: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobilenet_v2_and_minilm_are_described() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models");
        let path = root.join("mobilenet_v2/model.safetensors");
        if !path.exists() {
            panic!("{} is missing: run `make assets`", path.display());
        }
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let info = describe(&WeightSource::Path(path), size, None).unwrap();
        assert_eq!(
            (info.kind.as_str(), info.arch.as_str()),
            ("image", "mobilenet_v2")
        );
        // torchvision's MobileNetV2 has 3,504,872 parameters.
        assert_eq!(info.parameters, 3_504_872);
        assert_eq!(info.outputs, Some(1000));
        assert_eq!(info.classes, None);

        let dir = root.join("all-MiniLM-L6-v2");
        let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let weights = WeightSource::Path(dir.join("model.safetensors"));
        let info = describe(&weights, 0, Some(&config)).unwrap();
        assert_eq!((info.kind.as_str(), info.arch.as_str()), ("text", "bert"));
        // all-MiniLM-L6-v2: 22.7 M parameters (sentence-transformers' model card).
        assert!(
            (22_000_000..23_000_000).contains(&info.parameters),
            "{}",
            info.parameters
        );
        assert_eq!(info.outputs, None);
        let err = describe(&weights, 0, None).unwrap_err().to_string();
        assert!(err.contains("model_type"), "{err}");
    }
}
