//! Row decoding shared by the SQLite and PostgreSQL stores. Both keep the same columns in the same
//! order with the same kinds of values (text, 64-bit integers, a boolean), so one function maps a
//! row of either to a record; only the SQL text differs between the backends.

use std::collections::HashMap;

use montage_protocol::Role;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{SessionMeta, StoredOp};
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

/// `version, user, client, seq, ops`.
pub(super) fn stored_op(r: &impl Cols) -> Result<StoredOp> {
    Ok(StoredOp {
        version: to_u64(r.int(0)?),
        user: r.text(1)?,
        client: r.text(2)?,
        seq: to_u64(r.int(3)?),
        ops: r.text(4)?,
    })
}

/// A session's metadata from its `(owner, link_role)` row and its `(user, role)` grants; an
/// unknown role name is corruption, not a default.
pub(super) fn session_meta(
    session: &str,
    (owner, link): (String, String),
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
    })
}
