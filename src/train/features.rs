//! Phase 1's feature cache: the frozen backbone's pooled features, computed once per image in
//! batches (only one batch of pixels is ever in memory), then reused by every head epoch.

use burn::prelude::*;
use burn::tensor::TensorData;
use web_time::Instant;

use super::{Control, Progress};
use crate::data::FeatureSet;
use crate::models::MobileNetV2;
use crate::{Error, Result};

/// Pooled features of the images that could be read, and the ones that could not.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// One row per readable image, in input order.
    pub set: FeatureSet,
    /// Index into the input of each row of `set`.
    pub rows: Vec<usize>,
    /// (item name, reason) for each image left out.
    pub skipped: Vec<(String, String)>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Run `backbone` (eval mode) over `count` images, `batch` at a time. `load(i)` returns item
/// `i`'s name, label and preprocessed `[3, side, side]` pixels, or an error that skips it (the
/// run goes on and reports it).
#[allow(clippy::too_many_arguments)]
pub async fn extract(
    backbone: &MobileNetV2,
    classes: Vec<String>,
    count: usize,
    side: usize,
    batch: usize,
    device: &Device,
    load: &mut dyn FnMut(usize) -> (String, u32, Result<Vec<f32>>),
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<Extracted> {
    let start = Instant::now();
    let per_image = 3 * side * side;
    let (mut features, mut labels, mut rows, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut dim = 0;
    let mut next = 0;
    while next < count {
        let mut pixels = Vec::with_capacity(batch * per_image);
        let mut batch_rows = Vec::new();
        while batch_rows.len() < batch && next < count {
            let (name, label, result) = load(next);
            match result {
                Ok(x) if x.len() == per_image => {
                    pixels.extend_from_slice(&x);
                    batch_rows.push((next, label));
                }
                Ok(x) => skipped.push((name, format!("{} values, expected {per_image}", x.len()))),
                // Data errors already name the item; keep the reason alone.
                Err(Error::Data(reason)) => skipped.push((name, reason)),
                Err(err) => skipped.push((name, err.to_string())),
            }
            next += 1;
        }
        if batch_rows.is_empty() {
            continue;
        }
        let n = batch_rows.len();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 3, side, side]), device);
        let pooled = backbone.features(x);
        dim = pooled.dims()[1];
        let data = pooled
            .into_data_async()
            .await
            .map_err(|err| Error::Compute(err.to_string()))?;
        features.extend(data.iter::<f32>());
        for (row, label) in batch_rows {
            rows.push(row);
            labels.push(label);
        }
        let elapsed = start.elapsed().as_secs_f64().max(1e-9);
        let event = Progress::Features {
            done: next,
            total: count,
            throughput: rows.len() as f64 / elapsed,
            eta_s: (count - next) as f64 * elapsed / next as f64,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
    }
    if rows.is_empty() {
        return Err(Error::Data(format!(
            "none of the {count} images could be read"
        )));
    }
    Ok(Extracted {
        set: FeatureSet::new(dim, classes, features, labels)?,
        rows,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
    })
}
