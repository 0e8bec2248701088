//! Row decoding shared by the SQLite and PostgreSQL stores. Both keep the same columns in the same
//! order with the same kinds of values (text, 64-bit integers, a boolean), so one function maps a
//! row of either to a record; only the SQL text differs between the backends.

use std::collections::HashMap;

use montage_protocol::Role;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::tasks::{Award, Contribution, Invite, ShowcaseEntry, TaskRecord, TaskState};
use super::{SessionMeta, SessionSummary, StoredOp};
use crate::error::{Error, Result};

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(if v < 0 { 0 } else { u32::MAX })
}

/// The typed column reads the record mappers need, for a row of any backend that decodes them.
pub(super) trait Cols {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn flag(&self, i: usize) -> Result<bool>;
}

impl<R: Row> Cols for R
where
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool> {
        Ok(self.try_get(i)?)
    }
}

/// The columns [`stored_op`] reads.
pub(super) const OP_COLUMNS: &str = "version, user_id, client, seq, ops, committed_at";

pub(super) fn stored_op(r: &impl Cols) -> Result<StoredOp> {
    Ok(StoredOp {
        version: to_u64(r.int(0)?),
        user: r.text(1)?,
        client: r.text(2)?,
        seq: to_u64(r.int(3)?),
        ops: r.text(4)?,
        time: r.opt_int(5)?,
    })
}

/// A session's metadata from its `(owner, link_role, title, encrypted, key_epoch)` row and its
/// `(user, role)` grants; an unknown role name is corruption, not a default.
pub(super) fn session_meta(
    session: &str,
    (owner, link, title, encrypted, key_epoch): (String, String, Option<String>, i64, i64),
    grants: Vec<(String, String)>,
) -> Result<SessionMeta> {
    let parse = |what: &str| {
        Role::parse(what).ok_or_else(|| Error::Corrupt {
            session: session.to_owned(),
            reason: format!("unknown role {what:?}"),
        })
    };
    let mut roles = HashMap::new();
    for (user, role) in grants {
        roles.insert(user, parse(&role)?);
    }
    Ok(SessionMeta {
        owner,
        link_role: parse(&link)?,
        roles,
        title,
        encrypted: encrypted != 0,
        key_epoch: to_u64(key_epoch),
    })
}

/// A `GET /v1/sessions` entry from `(id, title, role, link_role, version, updated_at)`.
pub(super) fn session_summary(
    (id, title, role, link, version, updated): (String, Option<String>, String, String, i64, i64),
) -> Result<SessionSummary> {
    let parse = |what: &str| {
        Role::parse(what).ok_or_else(|| Error::Corrupt {
            session: id.clone(),
            reason: format!("unknown role {what:?}"),
        })
    };
    Ok(SessionSummary {
        role: parse(&role)?,
        link_role: parse(&link)?,
        id: id.clone(),
        title,
        version: to_u64(version),
        updated,
    })
}

// Rows of the task tables (the same column names on both SQL backends).

pub(in crate::store) fn corrupt(what: &str, value: &str) -> Error {
    Error::Corrupt {
        session: String::new(),
        reason: format!("unknown {what} {value:?}"),
    }
}

/// Columns of a task row, in the order `task_row` reads them (the same names on both backends).
pub(in crate::store) const TASK_COLUMNS: &str = "id, key, kind, session, created_by, payload, state, attempts, max_attempts, next_run_at, last_error, created_at, updated_at";

pub(in crate::store) fn task_row(r: &impl Cols) -> Result<TaskRecord> {
    let state = r.text(6)?;
    Ok(TaskRecord {
        id: r.text(0)?,
        key: r.text(1)?,
        kind: r.text(2)?,
        session: r.opt_text(3)?,
        created_by: r.text(4)?,
        payload: r.text(5)?,
        state: TaskState::parse(&state).ok_or_else(|| corrupt("task state", &state))?,
        attempts: to_u32(r.int(7)?),
        max_attempts: to_u32(r.int(8)?),
        next_run_at_ms: r.int(9)?,
        last_error: r.opt_text(10)?,
        created_at_ms: r.int(11)?,
        updated_at_ms: r.int(12)?,
    })
}

pub(in crate::store) const INVITE_COLUMNS: &str =
    "id, session, role, created_by, for_user, expires_at, max_uses, uses, revoked, created_at";

pub(in crate::store) fn invite_row(r: &impl Cols) -> Result<Invite> {
    let role = r.text(2)?;
    Ok(Invite {
        id: r.text(0)?,
        session: r.text(1)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_by: r.text(3)?,
        for_user: r.opt_text(4)?,
        expires_at_ms: r.opt_int(5)?,
        max_uses: r.opt_int(6)?.map(to_u32),
        uses: to_u32(r.int(7)?),
        revoked: r.flag(8)?,
        created_at_ms: r.int(9)?,
    })
}

/// `session, user, kind, count`.
pub(in crate::store) fn contribution_row(r: &impl Cols) -> Result<Contribution> {
    Ok(Contribution {
        session: r.text(0)?,
        user: r.text(1)?,
        kind: r.text(2)?,
        count: to_u64(r.int(3)?),
    })
}

/// `key, session, user, kind, badge, awarded_by, at`.
pub(in crate::store) fn award_row(r: &impl Cols) -> Result<Award> {
    Ok(Award {
        key: r.text(0)?,
        session: r.text(1)?,
        user: r.text(2)?,
        kind: r.text(3)?,
        badge: r.opt_text(4)?,
        awarded_by: r.opt_text(5)?,
        at_ms: r.int(6)?,
    })
}

pub(in crate::store) const SHOWCASE_COLUMNS: &str =
    "award, session, kind, user_id, awarded_by, version, title, at, newsletter";

pub(in crate::store) fn showcase_row(r: &impl Cols) -> Result<ShowcaseEntry> {
    Ok(ShowcaseEntry {
        award: r.text(0)?,
        session: r.text(1)?,
        kind: r.text(2)?,
        user: r.text(3)?,
        awarded_by: r.text(4)?,
        version: to_u64(r.int(5)?),
        title: r.opt_text(6)?,
        at_ms: r.int(7)?,
        newsletter: r.opt_int(8)?.map(to_u64),
    })
}

// Rows of the asset table.

pub(in crate::store) const ASSET_COLUMNS: &str =
    "id, kind, format, width, height, duration, bytes, uploader, session, created_at";

pub(in crate::store) fn asset_row<'r, R: Row>(row: &'r R) -> Result<crate::store::AssetRecord>
where
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let dim = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Ok(crate::store::AssetRecord {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        format: row.try_get(2)?,
        width: dim(row.try_get(3)?),
        height: dim(row.try_get(4)?),
        duration: row.try_get(5)?,
        bytes: u64::try_from(row.try_get::<i64, _>(6)?).unwrap_or(0),
        uploader: row.try_get(7)?,
        session: row.try_get(8)?,
        created_at: u64::try_from(row.try_get::<i64, _>(9)?).unwrap_or(0),
    })
}

pub(in crate::store) const NOTIFICATION_COLUMNS: &str =
    "id, kind, session, actor, time, read_at, comment_id, role, count";

pub(in crate::store) fn notification_row(r: &impl Cols) -> Result<montage_protocol::Notification> {
    let kind = r.text(1)?;
    let role = r.opt_text(7)?;
    Ok(montage_protocol::Notification {
        id: r.text(0)?,
        kind: montage_protocol::NotificationKind::parse(&kind)
            .ok_or_else(|| corrupt("notification kind", &kind))?,
        session: r.text(2)?,
        actor: r.text(3)?,
        time: r.int(4)?,
        read: r.opt_int(5)?.is_some(),
        comment_id: r.opt_text(6)?,
        role: match role {
            Some(s) => Some(Role::parse(&s).ok_or_else(|| corrupt("notification role", &s))?),
            None => None,
        },
        count: to_u32(r.int(8)?),
    })
}
