//! Training: the [`Recipe`] says what to do; the loop does it and reports [`Progress`].

pub mod features;
pub mod head;
pub mod progress;
pub mod recipe;

pub use head::{HeadReport, train_head};
pub use progress::{Control, Progress};
pub use recipe::{HeadPhase, Recipe};
