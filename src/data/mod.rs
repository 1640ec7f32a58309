//! Datasets: fixed feature vectors now; images, text and tables in their own files later.

pub mod features;
pub mod image;

pub use features::FeatureSet;
