//! Architectures, one file each, and the new classification head.

pub mod efficientnet_lite;
pub mod head;
pub mod mobilenet_v2;
pub mod resnet;

pub use efficientnet_lite::EfficientNetLite0;
pub use head::{Head, HeadConfig};
pub use mobilenet_v2::MobileNetV2;
pub use resnet::ResNet;
