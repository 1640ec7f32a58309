//! A labelled image dataset that hands out one decoded image at a time, so no more than a batch
//! of pixels is ever held: natively a folder of class subfolders, in the browser a JS callback
//! that decodes on demand (`createImageBitmap`).

use std::future::Future;
use std::pin::Pin;

use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::image::Preprocess;
use crate::{Error, Result};

/// The future [`ImageSource::load`] returns.
pub type LoadFuture<'a> = Pin<Box<dyn Future<Output = Result<RgbImage>> + 'a>>;

/// Items with a class label and a name, decoded one at a time.
pub trait ImageSource {
    /// Class names, indexed by label.
    fn classes(&self) -> &[String];
    /// Number of items.
    fn len(&self) -> usize;
    /// True without items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Label of item `i`.
    fn label(&self, i: usize) -> u32;
    /// Name of item `i` for messages (a path, a file name).
    fn name(&self, i: usize) -> String;
    /// Decode item `i` to RGB (grayscale replicated, alpha dropped); an error names the item.
    fn load(&self, i: usize) -> LoadFuture<'_>;
    /// All labels in order.
    fn labels(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }
}

/// Random resized crop + horizontal flip for one item in one epoch: the same draw for the same
/// (seed, epoch, item) whatever the batch order or platform.
pub fn augment_rng(seed: u64, epoch: usize, item: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((epoch as u64) << 40) ^ item as u64);
    rng
}

/// A batch of preprocessed images: `[n, 3, crop, crop]` floats, labels, and the rows that made
/// it (rows that failed to load are left out and reported in `skipped`).
pub struct Batch {
    /// Planar pixels, image after image.
    pub pixels: Vec<f32>,
    /// Label of each image.
    pub labels: Vec<i64>,
    /// Source row of each image.
    pub rows: Vec<usize>,
}

impl Batch {
    /// The pixels as a `[n, 3, side, side]` tensor on `device` (the buffer moves into it).
    pub fn tensor(
        &mut self,
        side: usize,
        device: &burn::prelude::Device,
    ) -> burn::prelude::Tensor<4> {
        let pixels = std::mem::take(&mut self.pixels);
        burn::prelude::Tensor::from_data(
            burn::tensor::TensorData::new(pixels, [self.rows.len(), 3, side, side]),
            device,
        )
    }
}

/// Load and preprocess `rows` of `source`; with `augment = Some((seed, epoch))` each image gets
/// its seeded random crop and flip. Unreadable items go to `skipped` as (name, reason).
pub async fn load_batch(
    source: &dyn ImageSource,
    rows: &[usize],
    pre: &Preprocess,
    augment: Option<(u64, usize)>,
    skipped: &mut Vec<(String, String)>,
) -> Batch {
    let mut batch = Batch {
        pixels: Vec::with_capacity(rows.len() * pre.len()),
        labels: Vec::with_capacity(rows.len()),
        rows: Vec::with_capacity(rows.len()),
    };
    for &row in rows {
        match source.load(row).await {
            Ok(image) => {
                let mut rng = augment.map(|(seed, epoch)| augment_rng(seed, epoch, row));
                batch.pixels.extend(pre.rgb(image, rng.as_mut()));
                batch.labels.push(source.label(row) as i64);
                batch.rows.push(row);
            }
            // Data errors already name the item; keep the reason alone.
            Err(Error::Data(reason)) => skipped.push((source.name(row), reason)),
            Err(err) => skipped.push((source.name(row), err.to_string())),
        }
    }
    batch
}

/// A folder dataset read from disk (native), optionally followed by a validation folder with
/// the same classes.
#[cfg(not(target_arch = "wasm32"))]
pub struct FolderSource {
    classes: Vec<String>,
    items: Vec<(std::path::PathBuf, u32)>,
}

#[cfg(not(target_arch = "wasm32"))]
impl FolderSource {
    /// Items of `train`, then those of `val` (whose classes must be the same): returns the
    /// source and the (train rows, validation rows) when `val` is given.
    pub fn new(
        train: &super::ImageFolder,
        val: Option<&super::ImageFolder>,
    ) -> Result<(Self, Option<super::split::Split>)> {
        let mut items = train.items.clone();
        let split = match val {
            None => None,
            Some(val) => {
                if val.classes != train.classes {
                    return Err(Error::Data(format!(
                        "the validation folder's classes {:?} differ from the training folder's {:?}",
                        val.classes, train.classes
                    )));
                }
                items.extend(val.items.iter().cloned());
                Some((
                    (0..train.items.len()).collect(),
                    (train.items.len()..items.len()).collect(),
                ))
            }
        };
        Ok((
            Self {
                classes: train.classes.clone(),
                items,
            },
            split,
        ))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ImageSource for FolderSource {
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn len(&self) -> usize {
        self.items.len()
    }
    fn label(&self, i: usize) -> u32 {
        self.items[i].1
    }
    fn name(&self, i: usize) -> String {
        self.items[i].0.display().to_string()
    }
    fn load(&self, i: usize) -> LoadFuture<'_> {
        let name = self.name(i);
        let result = std::fs::read(&self.items[i].0)
            .map_err(|err| Error::Data(format!("{name}: {err}")))
            .and_then(|bytes| super::image::decode(&bytes, &name));
        Box::pin(std::future::ready(result))
    }
}
