//! The one error type of the OT crate.

use crate::path::Path;

/// Why an edit could not be applied or decoded. Every variant names what was wrong so the
/// gateway can turn it into a `bad_request` message a client developer can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OtError {
    #[error("path {path} does not exist")]
    NoSuchPath { path: Path },
    #[error("path {path}: expected {expected}, found {found}")]
    WrongType {
        path: Path,
        expected: &'static str,
        found: &'static str,
    },
    #[error("path {path}: index {index} out of bounds (length {len})")]
    OutOfBounds {
        path: Path,
        index: usize,
        len: usize,
    },
    #[error("path {path}: text range {pos}..{end} out of bounds (length {len})")]
    TextOutOfBounds {
        path: Path,
        pos: usize,
        end: usize,
        len: usize,
    },
    #[error("path {path}: {reason}")]
    Invalid { path: Path, reason: String },
    #[error("the document would break its shape at {path}: {reason}")]
    Schema { path: Path, reason: String },
    #[error("malformed component: {0}")]
    Decode(String),
}

pub type Result<T, E = OtError> = std::result::Result<T, E>;
