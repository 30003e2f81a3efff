//! Process-level errors: what stops `sigil` from starting or a CLI command from finishing.
//! Each maps to an exit code; request-level errors live in `service` and are mapped to
//! problem+json in `http`.

use thiserror::Error;

/// Why the process could not do what it was asked.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SigilError {
    /// The configuration (flags, environment, file) is invalid. Exit code 2.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The root key or passphrase does not open this store. Exit code 3.
    #[error("the root key does not match this store: {0}")]
    WrongRootKey(String),
    /// The store could not be opened or read. Exit code 4.
    #[error("store error: {0}")]
    Store(String),
    /// Anything else at start-up (binding, TLS). Exit code 1.
    #[error("{0}")]
    Startup(String),
}

impl SigilError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            SigilError::Config(_) => 2,
            SigilError::WrongRootKey(_) => 3,
            SigilError::Store(_) => 4,
            SigilError::Startup(_) => 1,
        }
    }
}
