//! Datasets: feature vectors, image folders, preprocessing and splits.

pub mod features;
pub mod folder;
pub mod image;
pub mod source;
pub mod split;

pub use features::FeatureSet;
pub use folder::ImageFolder;
#[cfg(not(target_arch = "wasm32"))]
pub use source::FolderSource;
pub use source::ImageSource;
