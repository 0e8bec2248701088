//! The SDK's one error type.

use montage_protocol::ErrorCode;

/// Everything the SDK can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The edit does not apply to the local replica (missing path, index out of range, a shape
    /// the document contract forbids). Nothing was changed or queued.
    #[error("edit refused locally: {0}")]
    InvalidEdit(#[from] montage_ot::OtError),
    /// The session has no replica yet (never joined and nothing restored from the offline file).
    #[error("session {session:?} is not joined yet")]
    NotJoined { session: String },
    /// No server URL was given.
    #[error("no server URL given")]
    NoUrl,
    /// The connection task has stopped (the `Client` was closed or dropped).
    #[error("the client is closed")]
    Closed,
    /// The server refused a request: a join (`forbidden`: no access, ask the owner to share
    /// it; `not_found`: no such session, or it was deleted), or an HTTP call.
    #[error("server refused: {}: {message}", code.as_str())]
    Server { code: ErrorCode, message: String },
    /// Connecting or talking to the server failed.
    #[error("connection: {0}")]
    Connection(String),
    /// Reading or writing the offline file failed.
    #[error("offline file {path}: {reason}")]
    OfflineFile { path: String, reason: String },
    /// Waiting for the server took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The state does not fit the type asked for ([`SessionHandle::state_as`](crate::SessionHandle::state_as)).
    #[error("the state does not fit the type: {0}")]
    Decode(String),
    /// The TLS settings could not be used (an unreadable or malformed CA certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// No usable token: the token source failed, timed out, or gave a token for another user.
    #[error("token: {0}")]
    Token(String),
    /// An encrypted session's payloads could not be opened (wrong key, tampered payload) or
    /// its history does not add up.
    #[error("{0}")]
    Decrypt(#[from] crate::sealed::SealError),
}

impl Error {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
