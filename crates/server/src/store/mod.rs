//! Storage: one trait per component's records, each implemented by SQLite (the embedded
//! default), PostgreSQL (scale-out: several nodes share it) and an in-memory double for tests.
//!
//! | trait | records | file |
//! |---|---|---|
//! | [`Store`] | sessions, op log, snapshots | `sessions.rs` |
//! | [`SocialStore`] | comments, suggestions | `social.rs` |
//! | [`TaskStore`] | tasks, invites, contributions, awards | `tasks.rs` |
//! | [`AssetStore`] | asset metadata | `assets.rs` |
//! | [`HistoryStore`] | checkpoints, named versions | `history.rs` |
//! | [`NotificationStore`] | users' inboxes | `notifications.rs` |
//! | [`EventStore`] | the app event log | `events.rs` |
//! | [`LeaseStore`] | home-node leases (PostgreSQL, memory) | `leases.rs` |
//!
//! Each backend is a folder (`sqlite/`, `postgres/`, `memory/`). The two SQL backends share one
//! schema shape and run one SQL text for everything but their schema steps, group commit and
//! task claims (`sql.rs`); row decoding is shared too (`rows.rs`).

pub mod assets;
pub mod events;
pub mod history;
pub mod leases;
mod memory;
pub mod notifications;
pub mod postgres;
mod rows;
mod sessions;
mod social;
mod sql;
mod sql_records;
mod sqlite;
pub mod tasks;

use std::future::Future;
use std::pin::Pin;

pub use assets::{AssetRecord, AssetStore, AssetUsage};
pub use events::{EventStore, NewEvent, StoredEvent};
pub use history::{HistoryStore, Trimmed, VersionInfo};
pub use leases::{Lease, LeaseStore};
pub use memory::{MemoryStore, MemoryTaskStore};
pub use notifications::{NewNotification, NotificationStore};
pub use postgres::PgStore;
pub use sessions::{
    Loaded, MAX_TITLE_CHARS, NewSession, SESSION_TABLES, SessionMeta, SessionSummary,
    SessionUpdate, Snapshot, Store, StoredOp, Write,
};
pub use social::{SocialKind, SocialStore};
pub use sqlite::SqliteStore;
pub use tasks::TaskStore;

use crate::error::Result;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;
