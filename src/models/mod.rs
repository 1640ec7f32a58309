//! Architectures, one file each, and the new classification head.

pub mod head;
pub mod mobilenet_v2;

pub use head::{Head, HeadConfig};
pub use mobilenet_v2::MobileNetV2;
