//! The one error type of the server crate.

use std::path::PathBuf;

/// What went wrong inside the server. Handlers turn these into error frames or HTTP answers
/// without leaking the details of internal failures to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A version of the batch (the first one written in that statement is named) already exists.
    #[error("session {session}: a version at or after {version} already exists")]
    VersionConflict { session: String, version: u64 },
    #[error("stored data of session {session} is corrupt: {reason}")]
    Corrupt { session: String, reason: String },
    #[error("the store has schema version {found}, this build knows up to {known}")]
    UnsupportedSchema { found: i64, known: i64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the JWT secret is empty")]
    EmptySecret,
    #[error("token rejected: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    #[error("token rejected: {0}")]
    BadScope(String),
    #[error("no JWT secret: set MONTAGE_JWT_SECRET or run `montage serve` once to create {0}")]
    NoSecret(PathBuf),
    #[error("server I/O: {0}")]
    Serve(std::io::Error),
    #[error("fan-out bus: {0}")]
    Bus(String),
    /// The blob store (`object_store`: a local directory or S3) failed or is misconfigured.
    #[error("blob store {url}: {reason}")]
    Blob { url: String, reason: String },
    #[error("the store was closed")]
    Closed,
    #[error("configuration: {0}")]
    Config(String),
    /// A request refused for the caller's reason (bad input, no permission…); `code` says which
    /// and `message` may be shown to the client.
    #[error("{message}")]
    Refused {
        code: montage_protocol::ErrorCode,
        message: String,
    },
}

impl Error {
    pub fn refused(code: montage_protocol::ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused {
            code,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
