//! One error type for the whole crate: every message names what went wrong and where.

/// Errors a user can act on. Each variant's message names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable compute device for what was asked.
    #[error("device: {0}")]
    Device(String),
    /// A recipe field is out of range or inconsistent.
    #[error("recipe: {field}: {message}")]
    Recipe {
        /// The recipe field at fault, as it is spelled in JSON.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The dataset cannot be trained on as given.
    #[error("data: {0}")]
    Data(String),
    /// A weight file cannot be used; names the file (and the tensor, where one is at fault).
    #[error("weights {file}: {message}")]
    Weights {
        /// The file, as the user gave it.
        file: String,
        /// What is wrong, naming the tensor where there is one.
        message: String,
    },
    /// The backend failed while computing or reading back a tensor.
    #[error("compute: {0}")]
    Compute(String),
    /// A training step's loss or a gradient stopped being a finite number (the learning rate is
    /// too high for the model and data, most often). The phase's loop ends on it and keeps its
    /// last good model; see `PhaseReport::diverged`.
    #[error("diverged: {0}")]
    Diverged(String),
    /// Training was cancelled by the caller between two steps.
    #[error("cancelled")]
    Cancelled,
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A backend failure as the user reads it. burn's error opens with a generic line ("An error
/// happened during execution") and names the problem in its innermost cause, after a list of
/// the kernels it skipped; where that cause is a buffer the device could not allocate, the
/// message says so first, with its size and what to change.
pub(crate) fn compute(err: impl std::fmt::Display) -> Error {
    Error::Compute(describe_compute(&err.to_string()))
}

pub(crate) fn describe_compute(text: &str) -> String {
    const NO_BUFFER: &str = "can't allocate buffer of size: ";
    let bytes = text.lines().find_map(|line| {
        let at = line.find(NO_BUFFER)?;
        line[at + NO_BUFFER.len()..].trim().parse::<u64>().ok()
    });
    match bytes {
        Some(bytes) => format!(
            "the device could not allocate a buffer of {:.1} MiB ({bytes} bytes): one tensor \
             of this batch is larger than the adapter allows or has free; try a smaller batch \
             size (the recipe's batch_size, or the CLI's --feature-batch / --batch)",
            bytes as f64 / (1024.0 * 1024.0)
        ),
        None => text.to_string(),
    }
}
