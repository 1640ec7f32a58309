//! Architectures, one file each, and the new classification head.

pub mod head;

pub use head::{Head, HeadConfig};
