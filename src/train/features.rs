//! Phase 1's feature cache: the frozen backbone's pooled features, computed once per image in
//! batches (only one batch of pixels is ever in memory), then reused by every head epoch.
//!
//! The cache fills as the head's first epoch asks for it ([`Stream`]): the images go through
//! the backbone in the order of that epoch's batches, then the validation images, so the first
//! training step runs as soon as its own batch has features instead of after the whole set's.

use std::collections::HashMap;

use burn::prelude::*;
use web_time::Instant;

use super::head::HeadFeatures;
use super::run::compute;
use super::{Control, Progress};
use crate::data::image::Preprocess;
use crate::data::source::{ImageSource, Loader};
use crate::models::ImageModel;
use crate::{Error, Result};

/// What became of one row of the stream.
#[derive(Debug, Clone, Copy)]
enum Row {
    /// Index into the cache's rows.
    Kept(usize),
    /// Its image could not be read (named in `skipped`).
    Unreadable,
}

/// The backbone's features of a planned set of rows of `source`, computed as they are asked
/// for ([`HeadFeatures::gather`]) in the planned order, `batch` images at a time.
pub struct Stream<'a> {
    model: ImageModel,
    source: &'a dyn ImageSource,
    pre: Preprocess,
    batch: usize,
    device: Device,
    loader: Option<Loader<'a>>,
    total: usize,
    done: usize,
    rows: HashMap<usize, Row>,
    features: Vec<f32>,
    labels: Vec<i64>,
    /// Unreadable images as (name, reason), in the order met.
    pub skipped: Vec<(String, String)>,
    /// Each read row's pixels, hashed ([`crate::data::source::duplicates`]).
    pub fingerprints: HashMap<usize, u64>,
    seconds: f64,
}

impl<'a> Stream<'a> {
    /// A stream over `model`'s backbone (eval mode, BatchNorm folded: [`ImageModel::folded`]);
    /// nothing is computed before [`HeadFeatures::plan`] and the first gather.
    pub fn new(
        model: &ImageModel,
        source: &'a dyn ImageSource,
        pre: &Preprocess,
        batch: usize,
        device: &Device,
    ) -> Self {
        Self {
            model: model.folded(),
            source,
            pre: *pre,
            batch: batch.max(1),
            device: device.clone(),
            loader: None,
            total: 0,
            done: 0,
            rows: HashMap::new(),
            features: Vec::new(),
            labels: Vec::new(),
            skipped: Vec::new(),
            fingerprints: HashMap::new(),
            seconds: 0.0,
        }
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.model.feature_dim()
    }

    /// Of `rows`, those whose image was read, in order.
    pub fn readable(&self, rows: &[usize]) -> Vec<usize> {
        rows.iter()
            .copied()
            .filter(|r| matches!(self.rows.get(r), Some(Row::Kept(_))))
            .collect()
    }

    /// Images read (with features) and the seconds spent computing features.
    pub fn extracted(&self) -> (usize, f64) {
        (self.labels.len(), self.seconds)
    }

    /// The next `n` rows of the plan through the backbone.
    async fn pull(
        &mut self,
        n: usize,
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<()> {
        let start = Instant::now();
        let loader = self
            .loader
            .as_mut()
            .expect("pulled only while rows are missing");
        let before = loader.remaining();
        let mut b = loader.batch(n, &self.pre, None, &mut self.skipped).await;
        let read: std::collections::HashSet<usize> = b.rows.iter().copied().collect();
        let asked = before - loader.remaining();
        self.fingerprints
            .extend(b.rows.iter().copied().zip(b.fingerprints.iter().copied()));
        if !b.rows.is_empty() {
            let side = self.pre.crop as usize;
            let pooled = self.model.features(b.tensor(side, &self.device));
            let data = pooled.into_data_async().await.map_err(compute)?;
            self.features.extend(data.iter::<f32>());
            for (row, &label) in b.rows.drain(..).zip(&b.labels) {
                self.rows.insert(row, Row::Kept(self.labels.len()));
                self.labels.push(label);
            }
        }
        // The rows asked for that did not come back could not be read.
        let plan = self.loader.as_ref().expect("set above").handed_out();
        for &row in &plan[plan.len() - asked..] {
            if !read.contains(&row) {
                self.rows.insert(row, Row::Unreadable);
            }
        }
        self.done += asked;
        self.seconds += start.elapsed().as_secs_f64();
        let elapsed = self.seconds.max(1e-9);
        let event = Progress::Features {
            done: self.done,
            total: self.total,
            throughput: self.labels.len() as f64 / elapsed,
            eta_s: (self.total - self.done) as f64 * elapsed / self.done as f64,
        };
        if on_progress(&event) == Control::Cancel {
            return Err(Error::Cancelled);
        }
        if self.done == self.total && self.labels.is_empty() {
            return Err(Error::Data(format!(
                "none of the {} images could be read",
                self.total
            )));
        }
        Ok(())
    }
}

impl HeadFeatures for Stream<'_> {
    fn plan(&mut self, first_epoch: &[usize], val_rows: &[usize]) {
        if self.loader.is_none() {
            let order = [first_epoch, val_rows].concat();
            self.total = order.len();
            self.loader = Some(Loader::new(self.source, order, self.batch).fingerprinted());
        }
    }

    async fn gather(
        &mut self,
        rows: &[usize],
        on_progress: &mut dyn FnMut(&Progress) -> Control,
    ) -> Result<(Vec<f32>, Vec<i64>)> {
        loop {
            let missing = rows.iter().filter(|r| !self.rows.contains_key(r)).count();
            if missing == 0 {
                break;
            }
            if self.loader.as_ref().is_none_or(|l| l.remaining() == 0) {
                return Err(Error::Data(format!(
                    "internal: {missing} rows were asked for features outside the planned ones"
                )));
            }
            // The very first pull is the first step's batch alone; then whole batches.
            let n = if self.done == 0 {
                missing
            } else {
                missing.max(self.batch)
            };
            self.pull(n, on_progress).await?;
        }
        let dim = self.dim();
        let (mut x, mut y) = (Vec::with_capacity(rows.len() * dim), Vec::new());
        for r in rows {
            if let Some(&Row::Kept(i)) = self.rows.get(r) {
                x.extend_from_slice(&self.features[i * dim..(i + 1) * dim]);
                y.push(self.labels[i]);
            }
        }
        Ok((x, y))
    }
}
