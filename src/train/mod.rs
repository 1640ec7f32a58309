//! Training: the [`Recipe`] says what to do; the loops do it and report [`Progress`].

pub mod audio;
mod epochs;
pub mod features;
pub mod head;
pub mod images;
pub mod memory;
pub mod metrics;
mod optim;
pub mod pipeline;
pub mod progress;
pub mod recipe;
pub mod run;
pub mod series;
pub mod snapshot;
pub mod text;
pub mod transcribe;
pub mod wer;

pub use audio::finetune_audio;
pub use epochs::Checkpoints;
pub use head::train_head;
pub use metrics::Metrics;
pub use pipeline::{Resume, RunReport, finetune_images};
pub use progress::{Control, Progress};
pub use recipe::{FinetunePhase, HeadPhase, Modality, Recipe};
pub use run::PhaseReport;
pub use series::finetune_series;
pub use snapshot::EpochState;
pub use text::finetune_text;
