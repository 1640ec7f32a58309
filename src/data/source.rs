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
    /// Add `(name, label)` items (a listing the page sends in chunks).
    fn extend(&mut self, items: Vec<(String, String)>) -> Result<()> {
        let _ = items;
        Err(Error::Data("this dataset cannot take more items".into()))
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
    /// Each image's decoded pixels, hashed (the same picture in two files has the same one),
    /// when the loader was [`Loader::fingerprinted`]; empty otherwise.
    pub fingerprints: Vec<u64>,
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

/// Hands out `rows` of a source in order, batch by batch, with up to `ahead` loads started
/// before they are needed (so never more than `ahead` decoded images wait, besides the batch
/// being built). In the browser a load is a fetch and a decode in another worker: with one
/// batch ahead, the next batch decodes while the current one is computed. Natively a folder
/// source decodes when asked, on the same thread, so looking ahead only moves the work.
pub struct Loader<'a> {
    source: &'a dyn ImageSource,
    rows: std::borrow::Cow<'a, [usize]>,
    next: usize,
    ahead: usize,
    pending: std::collections::VecDeque<(usize, LoadFuture<'a>)>,
    /// Hash each decoded image into [`Batch::fingerprints`] ([`Self::fingerprinted`]).
    fingerprints: bool,
}

impl<'a> Loader<'a> {
    /// A loader over `rows` of `source` keeping `ahead` (at least 1) loads in flight; nothing is
    /// asked until the first batch.
    pub fn new(
        source: &'a dyn ImageSource,
        rows: impl Into<std::borrow::Cow<'a, [usize]>>,
        ahead: usize,
    ) -> Self {
        let ahead = ahead.max(1);
        Self {
            source,
            rows: rows.into(),
            next: 0,
            ahead,
            pending: std::collections::VecDeque::with_capacity(ahead),
            fingerprints: false,
        }
    }

    /// This loader, its batches carrying each image's [`fingerprint`] (the feature cache's,
    /// which sees every image once; the epochs through the backbone do not hash them again).
    pub fn fingerprinted(mut self) -> Self {
        self.fingerprints = true;
        self
    }

    /// The rows handed out so far (in batches), in order.
    pub fn handed_out(&self) -> &[usize] {
        &self.rows[..self.next - self.pending.len()]
    }

    /// Rows not yet handed out.
    pub fn remaining(&self) -> usize {
        self.rows.len() - self.next + self.pending.len()
    }

    fn fill(&mut self) {
        while self.pending.len() < self.ahead && self.next < self.rows.len() {
            let row = self.rows[self.next];
            self.pending.push_back((row, self.source.load(row)));
            self.next += 1;
        }
    }

    /// The next `n` rows (fewer at the end), preprocessed; with `augment = Some((seed, epoch))`
    /// each image gets its seeded random crop and flip. Unreadable items go to `skipped` as
    /// (name, reason). Loads of the following rows are already started when this returns.
    pub async fn batch(
        &mut self,
        n: usize,
        pre: &Preprocess,
        augment: Option<(u64, usize)>,
        skipped: &mut Vec<(String, String)>,
    ) -> Batch {
        let n = n.max(1).min(self.remaining());
        let mut batch = Batch {
            pixels: Vec::with_capacity(n * pre.len()),
            labels: Vec::with_capacity(n),
            rows: Vec::with_capacity(n),
            fingerprints: Vec::new(),
        };
        for _ in 0..n {
            self.fill();
            let (row, load) = self.pending.pop_front().expect("filled above");
            // Start the next load before waiting on this one.
            self.fill();
            match load.await {
                Ok(image) => {
                    if self.fingerprints {
                        batch.fingerprints.push(fingerprint(&image));
                    }
                    let mut rng = augment.map(|(seed, epoch)| augment_rng(seed, epoch, row));
                    batch.pixels.extend(pre.rgb(image, rng.as_mut()));
                    batch.labels.push(self.source.label(row) as i64);
                    batch.rows.push(row);
                }
                // Data errors already name the item; keep the reason alone.
                Err(Error::Data(reason)) => skipped.push((self.source.name(row), reason)),
                Err(err) => skipped.push((self.source.name(row), err.to_string())),
            }
        }
        batch
    }
}

/// A hash of an image's size and pixels.
fn fingerprint(image: &image::RgbImage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    image.dimensions().hash(&mut hasher);
    image.as_raw().hash(&mut hasher);
    hasher.finish()
}

/// Rows of `val` whose picture is also one of `train`'s (by `fingerprints`, row -> hash), as
/// (validation row, training row).
pub fn duplicates(
    train: &[usize],
    val: &[usize],
    fingerprints: &std::collections::HashMap<usize, u64>,
) -> Vec<(usize, usize)> {
    let seen: std::collections::HashMap<u64, usize> = train
        .iter()
        .filter_map(|&r| Some((*fingerprints.get(&r)?, r)))
        .collect();
    val.iter()
        .filter_map(|&r| Some((r, *seen.get(fingerprints.get(&r)?)?)))
        .collect()
}

/// Decodes item `i` (named `name`) of a [`ListedImages`].
pub type LoadFn = Box<dyn Fn(usize, &str) -> LoadFuture<'static>>;

/// Images listed by name and label name, decoded by a function on demand (in the browser, the
/// page's decoder). Classes follow [`super::classes::order`] unless given.
pub struct ListedImages {
    names: Vec<String>,
    label_names: Vec<String>,
    given: Option<Vec<String>>,
    classes: Vec<String>,
    labels: Vec<u32>,
    load: LoadFn,
}

impl ListedImages {
    /// Items `(name, label)`; `classes` fixes the class order (else the rule's), and a label
    /// outside it is an error naming the item.
    pub fn new(
        items: Vec<(String, String)>,
        classes: Option<Vec<String>>,
        load: LoadFn,
    ) -> Result<Self> {
        let mut listed = Self {
            names: Vec::new(),
            label_names: Vec::new(),
            given: classes,
            classes: Vec::new(),
            labels: Vec::new(),
            load,
        };
        listed.push(items)?;
        Ok(listed)
    }

    /// More items (the page sends large sets in chunks): the classes and labels are redone.
    pub fn push(&mut self, items: Vec<(String, String)>) -> Result<()> {
        for (name, label) in items {
            self.names.push(name);
            self.label_names.push(label);
        }
        self.classes = match &self.given {
            Some(classes) => classes.clone(),
            None => super::classes::order(&self.label_names),
        };
        let index: std::collections::HashMap<&str, u32> = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as u32))
            .collect();
        let mut labels = Vec::with_capacity(self.names.len());
        for (name, label) in self.names.iter().zip(&self.label_names) {
            labels.push(*index.get(label.as_str()).ok_or_else(|| {
                Error::Data(format!(
                    "{name}: label \"{label}\" is not one of the classes {:?}",
                    self.classes
                ))
            })?);
        }
        self.labels = labels;
        Ok(())
    }
}

impl ImageSource for ListedImages {
    fn classes(&self) -> &[String] {
        &self.classes
    }
    fn len(&self) -> usize {
        self.names.len()
    }
    fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }
    fn name(&self, i: usize) -> String {
        self.names[i].clone()
    }
    fn load(&self, i: usize) -> LoadFuture<'_> {
        (self.load)(i, &self.names[i])
    }
    fn extend(&mut self, items: Vec<(String, String)>) -> Result<()> {
        self.push(items)
    }
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

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;

    /// A source of 2x2 images whose loads are recorded; items in `broken` fail to decode.
    struct Recorded {
        classes: Vec<String>,
        broken: Vec<usize>,
        started: RefCell<Vec<usize>>,
        finished: Cell<usize>,
    }

    impl ImageSource for Recorded {
        fn classes(&self) -> &[String] {
            &self.classes
        }
        fn len(&self) -> usize {
            100
        }
        fn label(&self, i: usize) -> u32 {
            (i % 2) as u32
        }
        fn name(&self, i: usize) -> String {
            format!("item{i}")
        }
        fn load(&self, i: usize) -> LoadFuture<'_> {
            self.started.borrow_mut().push(i);
            Box::pin(async move {
                self.finished.set(self.finished.get() + 1);
                if self.broken.contains(&i) {
                    Err(Error::Data(format!("item{i}: not an image")))
                } else {
                    Ok(RgbImage::from_pixel(2, 2, image::Rgb([i as u8, 0, 0])))
                }
            })
        }
    }

    /// Batches come out in row order, unreadable rows named and left out, every row loaded
    /// once, and no more loads started than were handed out plus `ahead`.
    #[test]
    fn loader_keeps_order_and_a_bounded_window() {
        let source = Recorded {
            classes: vec!["a".into(), "b".into()],
            broken: vec![7],
            started: RefCell::new(Vec::new()),
            finished: Cell::new(0),
        };
        let rows: Vec<usize> = (0..30).rev().collect();
        let pre = Preprocess {
            resize: 2,
            crop: 2,
            ..Preprocess::default()
        };
        let mut loader = Loader::new(&source, &rows, 6);
        let (mut seen, mut skipped, mut handed) = (Vec::new(), Vec::new(), 0);
        while loader.remaining() > 0 {
            let b = futures_lite::future::block_on(loader.batch(4, &pre, None, &mut skipped));
            handed += 4.min(rows.len() - handed);
            assert_eq!(b.pixels.len(), b.rows.len() * pre.len());
            assert_eq!(
                b.labels,
                b.rows.iter().map(|&r| (r % 2) as i64).collect::<Vec<_>>()
            );
            let started = source.started.borrow().len();
            assert!(
                started <= handed + 6,
                "{started} loads started, {handed} handed out"
            );
            seen.extend(b.rows);
        }
        let want: Vec<usize> = rows.iter().copied().filter(|&r| r != 7).collect();
        assert_eq!(seen, want);
        assert_eq!(*source.started.borrow(), rows);
        assert_eq!(source.finished.get(), rows.len());
        assert_eq!(
            skipped,
            vec![("item7".to_string(), "item7: not an image".to_string())]
        );
        // A zero batch size still makes progress.
        let mut loader = Loader::new(&source, &rows[..3], 0);
        let b = futures_lite::future::block_on(loader.batch(0, &pre, None, &mut skipped));
        assert_eq!(b.rows, vec![29]);
    }
}
