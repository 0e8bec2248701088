//! The storage seam of app events (DESIGN §9.6): one log for the whole deployment, numbered in
//! commit order, so a receiver that was down catches up with `GET /v1/events?after=SEQ`.
//! Implemented for SQLite and PostgreSQL by `sql_records.rs` and by `memory/`.

use super::StoreFuture;

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique; the webhook's delivery key.
    pub id: String,
    /// `session.created`, `comment.created`, … (docs/WEBHOOKS.md "App events").
    pub kind: String,
    pub session: Option<String>,
    /// The event's `data` object, as JSON text.
    pub data: String,
    /// Milliseconds since the epoch.
    pub time: i64,
}

/// An appended event with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: u64,
    pub event: NewEvent,
}

impl StoredEvent {
    /// The JSON the feed and the webhook carry:
    /// `{"seq","id","type","session"?,"time","data"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let data: serde_json::Value =
            serde_json::from_str(&self.event.data).unwrap_or(serde_json::Value::Null);
        let mut v = serde_json::json!({
            "seq": self.seq,
            "id": self.event.id,
            "type": self.event.kind,
            "time": self.event.time,
            "data": data,
        });
        if let Some(s) = &self.event.session {
            v["session"] = serde_json::Value::String(s.clone());
        }
        v
    }
}

pub trait EventStore: Send + Sync + 'static {
    /// Appends `e` and returns its sequence number: greater than every number committed
    /// before it (appends take turns, so a reader that saw `n` never later finds one below).
    fn append_event<'a>(&'a self, e: &'a NewEvent) -> StoreFuture<'a, u64>;
    /// Events numbered above `after`, in order, at most `limit`.
    fn events_after<'a>(&'a self, after: u64, limit: u32) -> StoreFuture<'a, Vec<StoredEvent>>;
    /// The highest sequence number (0 for an empty log).
    fn last_event_seq(&self) -> StoreFuture<'_, u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            kind: "comment.created".into(),
            session: Some("s".into()),
            data: r#"{"comment_id":"c1"}"#.into(),
            time: 7,
        }
    }

    async fn log_round_trip(s: &dyn Store) {
        let log = s.events().expect("an event log");
        let a = log.append_event(&event("e1")).await.unwrap();
        let b = log.append_event(&event("e2")).await.unwrap();
        assert!(b > a);
        let all = log.events_after(0, 10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].seq, all[1].event.id.as_str()), (a, "e2"));
        assert_eq!(all[0].to_json()["data"]["comment_id"], "c1");
        assert_eq!(log.events_after(a, 10).await.unwrap()[0].seq, b);
        assert!(log.events_after(b, 10).await.unwrap().is_empty());
        assert_eq!(log.last_event_seq().await.unwrap(), b);
        assert_eq!(log.events_after(0, 1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn sqlite_log_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::store::SqliteStore::open(dir.path()).await.unwrap();
        log_round_trip(&s).await;
    }

    #[tokio::test]
    async fn postgres_log_round_trip() {
        crate::store::postgres::testdb::with_store("postgres_log_round_trip", async |s| {
            log_round_trip(s).await
        })
        .await;
    }

    #[tokio::test]
    async fn memory_log_round_trip() {
        log_round_trip(&crate::store::MemoryStore::new()).await;
    }
}
