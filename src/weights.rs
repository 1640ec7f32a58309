//! Pre-trained weights in: `.safetensors` (from a path or bytes) and PyTorch `.pth`/`.pt`
//! (legacy pickle and zip, from a path), mapped onto a module with a per-architecture key table.
//! Every failure names the file and, where there is one, the tensor.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[cfg(not(target_arch = "wasm32"))]
use burn::store::PytorchStore;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot,
    ModuleStore, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;

use crate::{Error, Result};

/// Where weights come from.
#[derive(Debug, Clone)]
pub enum WeightSource {
    /// A file on disk (native).
    Path(PathBuf),
    /// The bytes of a file (the browser), with the file's name for messages.
    Bytes {
        /// File name, as the user picked it.
        name: String,
        /// Its contents.
        bytes: Vec<u8>,
    },
}

impl WeightSource {
    /// The file's name for messages.
    pub fn name(&self) -> String {
        match self {
            Self::Path(path) => path.display().to_string(),
            Self::Bytes { name, .. } => name.clone(),
        }
    }
}

/// The container a weight file uses, told from its first bytes (not its extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Hugging Face safetensors.
    Safetensors,
    /// PyTorch >= 1.6 (a zip archive).
    PytorchZip,
    /// PyTorch < 1.6 (pickle protocol 2 with the legacy magic number).
    PytorchLegacy,
}

/// Tell the format from the first bytes of a file.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"PK\x03\x04") {
        return Some(Format::PytorchZip);
    }
    // Legacy torch.save: pickle PROTO 2, then LONG1 of the magic number 0x1950a86a20f9469cfc6c.
    if head.starts_with(&[
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
    ]) {
        return Some(Format::PytorchLegacy);
    }
    // safetensors: u64 little-endian header length, then a JSON object.
    if head.len() >= 9 && head[8] == b'{' {
        let len = u64::from_le_bytes(head[..8].try_into().ok()?);
        if len > 1 && len < 100_000_000 {
            return Some(Format::Safetensors);
        }
    }
    None
}

fn read_head(source: &WeightSource) -> Result<Vec<u8>> {
    match source {
        WeightSource::Bytes { bytes, .. } => Ok(bytes[..bytes.len().min(16)].to_vec()),
        WeightSource::Path(path) => {
            use std::io::Read;
            let mut head = Vec::with_capacity(16);
            std::fs::File::open(path)
                .and_then(|f| f.take(16).read_to_end(&mut head))
                .map_err(|err| Error::Weights {
                    file: path.display().to_string(),
                    message: format!("cannot read: {err}"),
                })?;
            Ok(head)
        }
    }
}

/// Tensor names and shapes of a checkpoint, read without loading any tensor data: enough to
/// tell the architecture and the number of classes before building the model.
pub fn inspect(source: &WeightSource) -> Result<BTreeMap<String, Vec<usize>>> {
    let fail = |message: String| weights_error(source, message);
    let format = format_of(source)?;
    let shapes = |all: &BTreeMap<String, burn::store::burn_pack::Tensor>| {
        all.iter()
            .map(|(k, t)| (k.clone(), t.shape.to_vec()))
            .collect::<BTreeMap<_, _>>()
    };
    match (format, source) {
        (Format::Safetensors, _) => {
            let mut store = safetensors_store(source).map_indices_contiguous(false);
            Ok(shapes(
                store.get_all_tensors().map_err(|e| fail(e.to_string()))?,
            ))
        }
        // The browser has no paths (burn's .pth reader is not in its module).
        #[cfg(not(target_arch = "wasm32"))]
        (_, WeightSource::Path(path)) => {
            // The names as they are in the file (burn-store renumbers `classifier.1` to
            // `classifier.0` by default).
            let mut store = PytorchStore::from_file(path.clone()).map_indices_contiguous(false);
            Ok(shapes(
                store.get_all_tensors().map_err(|e| fail(e.to_string()))?,
            ))
        }
        _ => Err(fail(PTH_BYTES.into())),
    }
}

fn weights_error(source: &WeightSource, message: String) -> Error {
    Error::Weights {
        file: source.name(),
        message,
    }
}

/// The container of `source`, told from its first bytes.
fn format_of(source: &WeightSource) -> Result<Format> {
    let head = read_head(source)?;
    if head.is_empty() {
        return Err(weights_error(source, "the file is empty (0 bytes)".into()));
    }
    sniff(&head).ok_or_else(|| {
        weights_error(
            source,
            "not a .safetensors or PyTorch (.pth/.pt) file (unrecognised first bytes)".into(),
        )
    })
}

fn safetensors_store(source: &WeightSource) -> SafetensorsStore {
    match source {
        WeightSource::Path(path) => SafetensorsStore::from_file(path.clone()),
        WeightSource::Bytes { bytes, .. } => SafetensorsStore::from_bytes(Some(bytes.clone())),
    }
}

const PTH_BYTES: &str = "PyTorch checkpoints are read from a file path (the command line), not \
                         in the browser: convert it once with `tabtune export --model FILE.pth \
                         --out FOLDER` and load FOLDER's model.safetensors";

/// float32 tensors (name, shape, little-endian bytes) and `metadata` as safetensors bytes;
/// the error is safetensors' own, for the caller to name the file.
pub fn f32_safetensors<B: AsRef<[u8]>>(
    tensors: &[(String, Vec<usize>, B)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> std::result::Result<Vec<u8>, String> {
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                shape.clone(),
                bytes.as_ref(),
            )
            .map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, metadata).map_err(|e| e.to_string())
}

/// Save `module` as safetensors bytes under the checkpoint's own key names: `map` is the
/// loader's (checkpoint prefix -> module prefix) table, applied in reverse, and Linear/BatchNorm
/// tensors get PyTorch's layout and names. Every BatchNorm also gets the 0-d int64
/// `num_batches_tracked` PyTorch's strict loading expects; `metadata` goes in the header.
pub fn save_safetensors<M: ModuleSnapshot>(
    module: &M,
    map: &[(String, String)],
    metadata: &[(&str, String)],
) -> Result<Vec<u8>> {
    let fail = |message: String| Error::Weights {
        file: "(export)".into(),
        message,
    };
    let remapper = KeyRemapper::from_patterns(
        map.iter()
            .map(|(from, to)| (format!("^{}", regex_escape(to)), from.clone()))
            .collect::<Vec<_>>(),
    )
    .map_err(|err| fail(format!("bad key map: {err}")))?;
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper);
    for (key, value) in metadata {
        store = store.metadata(*key, value.clone());
    }
    module
        .save_into(&mut store)
        .map_err(|err| fail(err.to_string()))?;
    let bytes = store.get_bytes().map_err(|err| fail(err.to_string()))?;
    add_batchnorm_counters(bytes).map_err(fail)
}

/// Add a 0-d int64 `num_batches_tracked` (0) beside every `running_mean` of a safetensors
/// buffer (header rewritten, data kept).
fn add_batchnorm_counters(bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    let len = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "short buffer")?) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).map_err(|e| e.to_string())?;
    let names: Vec<String> = header
        .keys()
        .filter_map(|k| k.strip_suffix("running_mean"))
        .map(|prefix| format!("{prefix}num_batches_tracked"))
        .collect();
    let mut data = bytes[8 + len..].to_vec();
    for name in &names {
        let start = data.len();
        data.extend_from_slice(&0i64.to_le_bytes());
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "I64", "shape": [], "data_offsets": [start, start + 8]}),
        );
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // The data section starts 8-byte aligned, as the safetensors writer pads it.
    while (8 + json.len()) % 8 != 0 {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    Ok(out)
}

/// What the loader checked, for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// The container format.
    pub format: Format,
    /// Tensors applied to the module.
    pub applied: usize,
}

/// Load `source` into `module`, renaming checkpoint keys by `map` (checkpoint prefix -> module
/// path prefix). Fails, naming the tensor, when one is missing, misshaped or of another dtype,
/// or when the checkpoint holds tensors the module has no place for (another architecture).
/// `ignore` lists key suffixes that may be left over (e.g. BN's `num_batches_tracked`).
pub fn load_into<M: ModuleSnapshot>(
    module: &mut M,
    source: &WeightSource,
    map: &[(String, String)],
    ignore: &[&str],
) -> Result<LoadReport> {
    let fail = |message: String| weights_error(source, message);
    let format = format_of(source)?;
    let remapper = KeyRemapper::from_patterns(
        map.iter()
            .map(|(from, to)| (format!("^{}", regex_escape(from)), to.clone()))
            .collect::<Vec<_>>(),
    )
    .map_err(|err| fail(format!("bad key map: {err}")))?;

    let result = match (format, source) {
        (Format::Safetensors, _) => {
            let mut store = safetensors_store(source)
                .with_from_adapter(from_checkpoint())
                .remap(remapper)
                .map_indices_contiguous(false)
                .allow_partial(true)
                .validate(false);
            module
                .load_from(&mut store)
                .map_err(|err| fail(err.to_string()))?
        }
        // The browser has no paths (burn's .pth reader is not in its module).
        #[cfg(not(target_arch = "wasm32"))]
        (_, WeightSource::Path(path)) => {
            let mut store = PytorchStore::from_file(path.clone())
                .remap(remapper)
                .map_indices_contiguous(false);
            // (PytorchStore's own load has no adapter to chain the cast to.)
            let tensors = store
                .get_all_tensors()
                .map_err(|err| fail(err.to_string()))?
                .values()
                .cloned()
                .collect();
            module.apply(tensors, None, Some(Box::new(from_checkpoint())), false)
        }
        _ => return Err(fail(PTH_BYTES.into())),
    };

    if let Some(err) = result.errors.first() {
        return Err(fail(describe_apply(err, map)));
    }
    if let Some((path, _)) = result.missing.first() {
        return Err(fail(format!(
            "tensor for `{path}` is missing ({} missing in all){}",
            result.missing.len(),
            if result.applied.is_empty() {
                "; nothing matched: is this a checkpoint of another architecture?"
            } else {
                ""
            }
        )));
    }
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|key| !ignore.iter().any(|suffix| key.ends_with(suffix)))
        .collect();
    if let Some(key) = unused.first() {
        return Err(fail(format!(
            "tensor `{key}` has no place in this architecture ({} such tensors): is this a \
             checkpoint of another architecture?",
            unused.len()
        )));
    }
    // Float tensors were cast to float32; anything else in a float's place is refused here,
    // not by a panic in the first training step.
    if let Some(t) = module
        .collect(None, None, false)
        .into_iter()
        .find(|t| t.dtype != DType::F32)
    {
        return Err(fail(format!(
            "tensor for `{}` is {:?}: the model takes floating point numbers (float32; \
             float16 and bfloat16 are converted)",
            t.name, t.dtype
        )));
    }
    Ok(LoadReport {
        format,
        applied: result.applied.len(),
    })
}

/// A tensor that did not fit, named as the checkpoint names it (`map`'s prefixes in reverse).
fn describe_apply(err: &burn::store::ApplyError, map: &[(String, String)]) -> String {
    use burn::store::ApplyError;
    let name = |path: &str| {
        map.iter()
            .filter(|(_, to)| path.starts_with(to.as_str()))
            .max_by_key(|(_, to)| to.len())
            .map_or(path.to_string(), |(from, to)| {
                format!("{from}{}", &path[to.len()..])
            })
    };
    match err {
        ApplyError::ShapeMismatch {
            path,
            expected,
            found,
        } => format!(
            "tensor `{}` has shape {:?} where the architecture takes {:?} (burn's layout: a \
             Linear's weight is transposed): a misshaped tensor, or another model's",
            name(path),
            found.as_slice(),
            expected.as_slice()
        ),
        ApplyError::DTypeMismatch { path, found, .. } => format!(
            "tensor `{}` is {found:?}: the model takes floating point numbers (float32; \
             float16 and bfloat16 are converted)",
            name(path)
        ),
        other => format!("{other:?}"),
    }
}

/// A checkpoint's tensors as burn takes them: PyTorch's layouts and names, every float as
/// float32 (Hugging Face checkpoints are often float16 or bfloat16).
fn from_checkpoint() -> impl ModuleAdapter {
    PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32))
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_from_their_first_bytes() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(Format::PytorchZip));
        let mut st = 40u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"a\":");
        assert_eq!(sniff(&st), Some(Format::Safetensors));
        assert_eq!(sniff(b"GIF89a......"), None);
    }

    /// A safetensors file of a PyTorch `Linear(3, 2)` whose weight and bias are written as
    /// `dtype` by `encode`.
    fn linear_file(dtype: &str, encode: &dyn Fn(f32) -> Vec<u8>) -> Vec<u8> {
        let (w, b) = (LINEAR_WEIGHT, [1.0f32, -2.0]);
        let wb: Vec<u8> = w.iter().flat_map(|&v| encode(v)).collect();
        let bb: Vec<u8> = b.iter().flat_map(|&v| encode(v)).collect();
        let header = serde_json::json!({
            "weight": {"dtype": dtype, "shape": [2, 3], "data_offsets": [0, wb.len()]},
            "bias": {"dtype": dtype, "shape": [2], "data_offsets": [wb.len(), wb.len() + bb.len()]},
        })
        .to_string();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(wb);
        out.extend(bb);
        out
    }

    /// `[out, in]`, each exactly a float16 and a bfloat16.
    const LINEAR_WEIGHT: [f32; 6] = [0.5, -1.25, 2.0, 0.125, 3.5, -0.75];

    #[test]
    fn half_precision_weights_load_as_float32_and_integers_are_refused() {
        use burn::nn::{Linear, LinearConfig};
        use burn::prelude::*;
        let device = Device::flex();
        let load = |bytes: Vec<u8>| {
            let mut linear: Linear = LinearConfig::new(3, 2).init(&device);
            let source = WeightSource::Bytes {
                name: "half.safetensors".into(),
                bytes,
            };
            load_into(&mut linear, &source, &[], &[]).map(|_| linear)
        };
        // float16 (normal numbers: the exponent rebiased, the mantissa's top 10 bits) and
        // bfloat16 (a float32's top 16 bits).
        let f16 = |v: f32| {
            let bits = v.to_bits();
            let sign = (bits >> 16) & 0x8000;
            let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
            let half = sign | ((exp as u32) << 10) | ((bits >> 13) & 0x3ff);
            (half as u16).to_le_bytes().to_vec()
        };
        let bf16 = |v: f32| ((v.to_bits() >> 16) as u16).to_le_bytes().to_vec();
        for (dtype, encode) in [("F16", &f16 as &dyn Fn(f32) -> Vec<u8>), ("BF16", &bf16)] {
            let linear = load(linear_file(dtype, encode)).unwrap();
            let weight = linear.weight.val();
            assert_eq!(weight.dtype(), DType::F32, "{dtype}");
            // burn's layout is [in, out].
            let got: Vec<f32> = weight.transpose().into_data().iter::<f32>().collect();
            assert_eq!(got, LINEAR_WEIGHT, "{dtype}");
            let x = Tensor::<2>::from_data([[1.0f32, 0.0, 0.0]], &device);
            let y: Vec<f32> = linear.forward(x).into_data().iter::<f32>().collect();
            assert_eq!(y, [1.5, -1.875], "{dtype}");
        }
        let err = load(linear_file("I64", &|v| (v as i64).to_le_bytes().to_vec()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("half.safetensors") && err.contains("I64") && err.contains("weight"),
            "{err}"
        );
    }

    #[test]
    fn escaping_keeps_dots_literal() {
        assert_eq!(regex_escape("features.1.conv"), "features\\.1\\.conv");
    }
}

/// `files` (name, contents) as one .zip archive (deflated), e.g. an exported model folder.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |err: &dyn std::fmt::Display| Error::Weights {
        file: "export.zip".into(),
        message: err.to_string(),
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(files.iter().any(|(_, b)| b.len() >= u32::MAX as usize));
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options)
            .map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

#[cfg(test)]
mod zip_tests {
    #[test]
    fn zipped_files_read_back() {
        let files = vec![
            ("config.json".to_string(), b"{\"a\": 1}".to_vec()),
            ("model.safetensors".to_string(), vec![7u8; 100_000]),
        ];
        let bytes = super::zip_files(&files).unwrap();
        assert!(bytes.len() < 2_000, "deflated: {} bytes", bytes.len());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        for (name, contents) in &files {
            let mut file = archive.by_name(name).unwrap();
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut out).unwrap();
            assert_eq!(&out, contents);
        }
    }
}

/// The values of a float tensor's little-endian bytes as f32 (F32, F16 or BF16; `None` for
/// another dtype).
pub fn floats(dtype: safetensors::Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype;
    let f16 = |h: u16| -> f32 {
        let (sign, exp, frac) = (
            (h >> 15) as u32,
            ((h >> 10) & 0x1f) as i32,
            (h & 0x3ff) as f32,
        );
        let magnitude = match exp {
            0 => frac * 2f32.powi(-24),
            31 if frac == 0.0 => f32::INFINITY,
            31 => f32::NAN,
            _ => (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
        };
        if sign == 1 { -magnitude } else { magnitude }
    };
    match dtype {
        Dtype::F32 => Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        Dtype::F16 => Some(
            bytes
                .chunks_exact(2)
                .map(|b| f16(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
        ),
        Dtype::BF16 => Some(
            bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                .collect(),
        ),
        _ => None,
    }
}
