//! Datasets: feature vectors, image folders, text tables and tokenisation, preprocessing and
//! splits.

pub mod audio;
pub mod classes;
pub mod features;
pub mod folder;
pub mod image;
pub mod mel;
pub mod series;
pub mod source;
pub mod split;
pub mod summary;
pub mod text;
pub mod tokenize;
pub mod transcripts;

pub use audio::{AudioClips, AudioOptions, AudioSet};
pub use features::FeatureSet;
pub use folder::ImageFolder;
pub use series::{Recordings, SeriesOptions, SeriesSet};
#[cfg(not(target_arch = "wasm32"))]
pub use source::FolderSource;
pub use source::ImageSource;
pub use summary::Summary;
pub use text::{Columns, TextSet};
pub use tokenize::TextTokenizer;
