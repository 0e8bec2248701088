#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod client;
pub mod core;
mod error;
mod event;
mod http;
pub mod sealed;
mod tls;
mod token;

pub use client::{Client, Events, Options, SessionHandle};
pub use error::{Error, Result};
pub use event::{ConnectionState, Event};
pub use http::{
    Api, Asset, Award, Frame, Invite, NewInvite, Recognition, SessionInfo, SessionSettings,
    SessionState, ShowcaseEntry, Version,
};
pub use montage_ot::{Component, Op, Path, Value, path};
pub use montage_protocol::{
    Annotation, Comment, ErrorCode, NewComment, Participant, Region, Role, Suggestion,
    SuggestionStatus, TaskInfo, Tier, TimeRange,
};
pub use tls::Tls;
pub use token::{BoxError, TokenFuture, TokenSource};
