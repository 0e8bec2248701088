#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod binary;
mod codec;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod message;
mod path;
/// The types prost generated from `proto/montage.proto` (package `montage.v1`): the binary
/// frames of subprotocol `montage.v1.proto` and the social messages.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/montage.v1.rs"));
}
pub mod sealed;
pub mod social;

pub use binary::{
    decode_client_binary, decode_server_binary, encode_client_binary, encode_server_binary,
    server_json_to_binary,
};
pub use codec::{
    ClientFrame, MAX_TOKEN_LEN, Rejected, decode_client, decode_server, encode, encode_op,
    encode_op_range, encode_stored_op, encode_with_rid,
};
pub use error::{ErrorCode, ProtocolError};
pub use message::{
    ClientMessage, CreateOptions, OpEntry, Participant, Role, ServerMessage, StateRef, TaskInfo,
    Tier, tier_for_mbps,
};
pub use path::path_segment;
pub use social::{
    Annotation, Comment, ConvertError, NewComment, Notification, NotificationKind, Region,
    Suggestion, SuggestionStatus, TimeRange, rfc3339,
};

/// The subprotocol of the JSON form (the default when a client names none).
pub const SUBPROTOCOL_JSON: &str = "montage.v1.json";
/// The subprotocol of the binary form (DESIGN §9.5): protobuf frames of `proto/montage.proto`.
pub const SUBPROTOCOL_PROTO: &str = "montage.v1.proto";
/// WebSocket close codes the server uses (docs/PROTOCOL.md "Close codes").
pub mod close {
    /// The server is shutting down; reconnect (to another node).
    pub const GOING_AWAY: u16 = 1001;
    /// Abuse past the rate limits, or a send queue left full: back off before reconnecting.
    pub const POLICY: u16 = 1008;
    /// The token is missing, invalid or expired, or a refreshed one is for another user: get a
    /// new token before reconnecting; the same token will be refused again.
    pub const UNAUTHORIZED: u16 = 4401;
}
/// Session, client and user ids are at most this many bytes.
pub const MAX_ID_LEN: usize = 128;
