//! Error codes on the wire and the decoder's error type.

use serde::{Deserialize, Serialize};

/// The `code` of an `error` frame (docs/PROTOCOL.md, contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    BadRequest,
    NotFound,
    RateLimited,
    TooLarge,
    Conflict,
    /// The server can't do this here (e.g. video frames without ffmpeg).
    NotSupported,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotSupported => "not_supported",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Why a frame could not be decoded. Every variant becomes a `bad_request` error frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("frame is not valid JSON: {0}")]
    Json(String),
    #[error("frame is not a valid montage.v1 protobuf message: {0}")]
    Protobuf(String),
    #[error("a message must be a JSON object")]
    NotObject,
    #[error("message has no string \"type\"")]
    MissingType,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("invalid {kind} message: {reason}")]
    Invalid { kind: String, reason: String },
    #[error("\"rid\" must be a string or a number")]
    BadRid,
    #[error("{field} must be 1..={max} bytes, got {len}")]
    BadId {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

impl ProtocolError {
    /// The wire code for this error.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadRequest
    }
}
