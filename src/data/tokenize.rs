//! Token ids for a BERT-family encoder from its own `tokenizer.json`, through Hugging Face's
//! `tokenizers` crate: truncation to a maximum length, padding to the longest in the batch,
//! attention masks.

use burn::prelude::*;
use burn::tensor::TensorData;
use tokenizers::{Tokenizer, TruncationParams};

use crate::{Error, Result};

/// A tokenizer checked against the model's vocabulary.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
    pad_id: u32,
    /// The tokenizer.json as given, for export.
    pub json: Vec<u8>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("max_length", &self.max_length)
            .finish()
    }
}

/// One batch of token ids `[batch, len]` (padded to the longest), with masks.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Rows in the batch.
    pub batch: usize,
    /// Padded length.
    pub len: usize,
    /// Token ids, row-major.
    pub ids: Vec<i64>,
    /// 1 for tokens, 0 for padding.
    pub mask: Vec<i64>,
    /// Segment ids.
    pub types: Vec<i64>,
    /// Rows cut at the maximum length.
    pub truncated: usize,
}

impl Tokens {
    /// Rows `r` of the batch (the padded length kept).
    pub fn rows(&self, r: std::ops::Range<usize>) -> Self {
        let cut = |v: &[i64]| v[r.start * self.len..r.end * self.len].to_vec();
        Self {
            batch: r.len(),
            len: self.len,
            ids: cut(&self.ids),
            mask: cut(&self.mask),
            types: cut(&self.types),
            truncated: 0,
        }
    }

    /// (ids, mask, types) as `[batch, len]` int tensors on `device`.
    pub fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2, Int>) {
        let t = |v: &Vec<i64>| {
            Tensor::<2, Int>::from_data(TensorData::new(v.clone(), [self.batch, self.len]), device)
        };
        (t(&self.ids), t(&self.mask), t(&self.types))
    }
}

/// `json` as a tokenizer, checked first for what makes the tokenizers crate panic (fuzzing
/// found two): JSON that does not parse (its decoder's reader expects a value), and templates
/// naming undefined special tokens ([`check_templates`]).
pub(crate) fn parse(json: &[u8]) -> std::result::Result<Tokenizer, String> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|err| format!("not a Hugging Face tokenizer.json: not JSON ({err})"))?;
    check_templates(&value)?;
    Tokenizer::from_bytes(json).map_err(|err| format!("not a Hugging Face tokenizer.json: {err}"))
}

/// The number of tokens of a tokenizer.json (read as [`TextTokenizer::from_bytes`] reads it).
pub fn vocab_size(json: &[u8]) -> Result<usize> {
    parse(json)
        .map(|t| t.get_vocab_size(true))
        .map_err(Error::Data)
}

/// A TemplateProcessing post-processor (under `post_processor`, nested in a Sequence or not)
/// whose template names a special token its `special_tokens` do not define: the tokenizers
/// crate reads it, then panics on the first text (fuzzing found one). Named here instead.
fn check_templates(value: &serde_json::Value) -> std::result::Result<(), String> {
    fn walk(v: &serde_json::Value) -> std::result::Result<(), String> {
        match v {
            serde_json::Value::Object(o) => {
                // (By shape: the crate reads a template whatever its "type" says.)
                if o.contains_key("single") || o.contains_key("pair") {
                    let defined = o.get("special_tokens").and_then(|s| s.as_object());
                    for side in ["single", "pair"] {
                        for piece in o.get(side).and_then(|p| p.as_array()).into_iter().flatten() {
                            // A single text has one sequence, A (the crate indexes a second).
                            if side == "single"
                                && piece.pointer("/Sequence/id").is_some_and(|id| id != "A")
                            {
                                return Err("the post-processor's single template uses a second \
                                            sequence (B), which one text does not have"
                                    .into());
                            }
                            let Some(id) =
                                piece.pointer("/SpecialToken/id").and_then(|i| i.as_str())
                            else {
                                continue;
                            };
                            let entry = defined.and_then(|d| d.get(id));
                            let ids = entry.and_then(|e| e.get("ids")).and_then(|i| i.as_array());
                            let tokens = entry
                                .and_then(|e| e.get("tokens"))
                                .and_then(|t| t.as_array());
                            match (ids, tokens) {
                                (Some(ids), Some(tokens)) if ids.len() == tokens.len() => {}
                                _ => {
                                    return Err(format!(
                                        "the post-processor's {side} template uses the special token \
                                         {id:?}, which its special_tokens do not define (with as many \
                                         ids as tokens)"
                                    ));
                                }
                            }
                        }
                    }
                }
                o.values().try_for_each(walk)
            }
            serde_json::Value::Array(a) => a.iter().try_for_each(walk),
            _ => Ok(()),
        }
    }
    value.get("post_processor").map_or(Ok(()), walk)
}

impl TextTokenizer {
    /// Parse `tokenizer.json` (`file` names it in errors) for a model of `vocab_size` rows that
    /// takes at most `max_positions` tokens; `max_length` (at most `max_positions`) is where
    /// inputs are cut.
    pub fn from_bytes(
        json: &[u8],
        file: &str,
        vocab_size: usize,
        max_positions: usize,
        max_length: usize,
    ) -> Result<Self> {
        let fail = |message: String| Error::Weights {
            file: file.into(),
            message,
        };
        let mut inner = parse(json).map_err(fail)?;
        let size = inner.get_vocab_size(true);
        if size != vocab_size {
            return Err(fail(format!(
                "the tokenizer has {size} tokens but the model's config.json says vocab_size \
                 {vocab_size}: they belong to different models"
            )));
        }
        if max_length < 2 || max_length > max_positions {
            return Err(Error::Recipe {
                field: "text.max_length".into(),
                message: format!(
                    "{max_length} is outside 2..={max_positions} (the model's \
                     max_position_embeddings)"
                ),
            });
        }
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|err| fail(err.to_string()))?;
        inner.with_padding(None);
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .unwrap_or(0);
        Ok(Self {
            inner,
            max_length,
            pad_id,
            json: json.to_vec(),
        })
    }

    /// Where inputs are cut.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokenise `texts` (special tokens added, cut at the maximum length), padded to the
    /// longest.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tokens> {
        let mut rows = Vec::with_capacity(texts.len());
        let mut truncated = 0;
        for text in texts {
            let e = self
                .inner
                .encode(text.as_ref(), true)
                .map_err(|err| Error::Data(format!("cannot tokenise: {err}")))?;
            truncated += usize::from(!e.get_overflowing().is_empty());
            rows.push(e);
        }
        let len = rows
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut out = Tokens {
            batch: texts.len(),
            len,
            ids: Vec::with_capacity(texts.len() * len),
            mask: Vec::with_capacity(texts.len() * len),
            types: Vec::with_capacity(texts.len() * len),
            truncated,
        };
        for e in &rows {
            let pad = len - e.get_ids().len();
            out.ids.extend(e.get_ids().iter().map(|&v| v as i64));
            out.ids.extend(std::iter::repeat_n(self.pad_id as i64, pad));
            out.mask
                .extend(e.get_attention_mask().iter().map(|&v| v as i64));
            out.mask.extend(std::iter::repeat_n(0, pad));
            out.types.extend(e.get_type_ids().iter().map(|&v| v as i64));
            out.types.extend(std::iter::repeat_n(0, pad));
        }
        Ok(out)
    }
}
