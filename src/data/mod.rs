//! Datasets: feature vectors, image folders, preprocessing and splits.

pub mod features;
pub mod folder;
pub mod image;
pub mod split;

pub use features::FeatureSet;
pub use folder::ImageFolder;
