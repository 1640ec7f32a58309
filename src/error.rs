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
    /// Training was cancelled by the caller between two steps.
    #[error("cancelled")]
    Cancelled,
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
