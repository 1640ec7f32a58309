//! tabtune: fine-tune pre-trained models on the user's own device — in a browser tab through
//! WebGPU, or natively from the CLI — with one Rust core.
//!
//! Module map:
//! - [`bench`]: the speed workloads `make bench` times, natively and in the browser.
//! - [`device`]: pick WebGPU (browser), a native GPU (when asked) or the CPU backend, and say which.
//! - [`models`]: architectures and the classification head.
//! - [`data`]: datasets and batching.
//! - [`train`]: the [`train::Recipe`] and the training loop with progress events.
//! - [`weights`]: pre-trained weights in (.safetensors, .pth) with per-architecture key maps.
//! - `web` (wasm32 only): the thin wasm-bindgen facade the page's worker calls.

pub mod bench;
pub mod data;
pub mod device;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzz;
pub mod models;
pub mod session;
pub mod train;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
