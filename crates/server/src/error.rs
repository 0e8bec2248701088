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
    /// An append carried a lease epoch that is no longer the session's: another node took over.
    #[error("session {session}: this node no longer holds its lease (epoch {epoch})")]
    Fenced { session: String, epoch: u64 },
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
    /// A JWT secret given by flag or environment (or to `Auth::new`) that is too short to
    /// resist guessing.
    #[error(
        "the JWT secret is {len} bytes long; at least {min} are needed. Use a random one, e.g. \
         MONTAGE_JWT_SECRET=$(openssl rand -hex 32), or leave MONTAGE_JWT_SECRET and \
         --jwt-secret unset and `montage serve` creates one in the data dir"
    )]
    WeakSecret { len: usize, min: usize },
    /// The secret file in the data dir holds a secret that is too short.
    #[error(
        "{path} holds a JWT secret of {len} bytes; at least {min} are needed. Delete the file \
         and `montage serve` creates a random one (tokens signed with the old one stop \
         working), or put the output of `openssl rand -hex 32` in it"
    )]
    WeakSecretFile {
        path: PathBuf,
        len: usize,
        min: usize,
    },
    /// The secret file in the data dir may be read by group or others.
    #[error(
        "{path} holds the JWT secret but is readable by group or others (mode {mode:o}): run \
         `chmod 600 {path}` (and delete it for a new secret if others may have read it)"
    )]
    SecretFileOpen { path: PathBuf, mode: u32 },
    /// `--dev` on an address others can reach, without `--dev-allow-remote`.
    #[error(
        "--dev hands out a token for any user name to whoever asks, so it listens only on \
         loopback addresses (127.0.0.1, [::1], localhost) and {addr} is not one: use \
         --addr 127.0.0.1:PORT, or add --dev-allow-remote if everyone who can reach {addr} may \
         act as any user"
    )]
    DevRemote { addr: std::net::SocketAddr },
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
