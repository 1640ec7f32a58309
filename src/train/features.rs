//! Phase 1's feature cache: the frozen backbone's pooled features, computed once per image in
//! batches (only one batch of pixels is ever in memory), then reused by every head epoch.

use burn::prelude::*;
use web_time::Instant;

use super::run::compute;
use super::{Control, Progress};
use crate::data::FeatureSet;
use crate::data::image::Preprocess;
use crate::data::source::{ImageSource, Loader};
use crate::models::ImageModel;
use crate::{Error, Result};

/// Pooled features of the images that could be read.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// One row per readable image, in the order of the rows asked for.
    pub set: FeatureSet,
    /// Source row of each row of `set`.
    pub rows: Vec<usize>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Run `model`'s backbone (eval mode, BatchNorm folded: [`ImageModel::folded`]) over `rows` of `source`, `batch` images at a time.
/// Unreadable images are left out and added to `skipped` as (name, reason); the run goes on.
#[allow(clippy::too_many_arguments)]
pub async fn extract(
    model: &ImageModel,
    source: &dyn ImageSource,
    rows: &[usize],
    pre: &Preprocess,
    batch: usize,
    device: &Device,
    skipped: &mut Vec<(String, String)>,
    on_progress: &mut dyn FnMut(&Progress) -> Control,
) -> Result<Extracted> {
    let start = Instant::now();
    let model = model.folded();
    let side = pre.crop as usize;
    let (mut features, mut labels, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut dim = model.feature_dim();
    let mut done = 0;
    let mut loader = Loader::new(source, rows, batch);
    while loader.remaining() > 0 {
        let before = loader.remaining();
        let mut b = loader.batch(batch.max(1), pre, None, skipped).await;
        done += before - loader.remaining();
        if !b.rows.is_empty() {
            let pooled = model.features(b.tensor(side, device));
            dim = pooled.dims()[1];
            let data = pooled.into_data_async().await.map_err(compute)?;
            features.extend(data.iter::<f32>());
            labels.extend(b.labels.iter().map(|&l| l as u32));
            kept.extend(b.rows);
        }
        let elapsed = start.elapsed().as_secs_f64().max(1e-9);
        let event = Progress::Features {
            done,
            total: rows.len(),
            throughput: kept.len() as f64 / elapsed,
            eta_s: (rows.len() - done) as f64 * elapsed / done as f64,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
    }
    if kept.is_empty() {
        return Err(Error::Data(format!(
            "none of the {} images could be read",
            rows.len()
        )));
    }
    Ok(Extracted {
        set: FeatureSet::new(dim, source.classes().to_vec(), features, labels)?,
        rows: kept,
        seconds: start.elapsed().as_secs_f64(),
    })
}
