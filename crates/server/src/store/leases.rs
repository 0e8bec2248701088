//! Home-node leases (DESIGN §9.7): which node sequences a loaded session.
//!
//! Several nodes may hold a session loaded; one of them, the holder of its lease, is its *home*
//! and the only one that appends to its op log. The others forward edits there
//! (`sync::cluster::home`). Every acquisition raises the lease's *epoch*, and a home stamps its
//! epoch on what it appends ([`Write::Op`](super::Write)`.fence`): the store refuses an append
//! whose epoch is no longer the lease's (`Error::Fenced`), so a node that lost its lease while
//! paused or cut off can never commit after another took over. Time is the database's clock
//! (`now()`), so the nodes' clocks need not agree.
//!
//! Implemented by PostgreSQL (`postgres/leases.rs`) and the in-memory double; SQLite has no
//! leases (one node owns its file).

use std::time::Duration;

use super::StoreFuture;

/// A session's lease as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The holder's node id (its bus id).
    pub node: String,
    /// Raised on every acquisition; never reused for a session.
    pub epoch: u64,
}

pub trait LeaseStore: Send + Sync + 'static {
    /// Takes `session`'s lease for `node` for `ttl` when it is free, expired or `node`'s own
    /// (then with a new epoch, fencing any older holder in this node). Answers the lease as it
    /// stands afterwards: `node`'s when taken, the live holder's otherwise.
    fn acquire<'a>(
        &'a self,
        session: &'a str,
        node: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, Lease>;
    /// Extends the leases of `sessions` that `node` still holds by `ttl` from now; answers
    /// those as (session, epoch).
    fn renew<'a>(
        &'a self,
        node: &'a str,
        sessions: &'a [String],
        ttl: Duration,
    ) -> StoreFuture<'a, Vec<(String, u64)>>;
    /// Gives a lease up (the session unloaded): another node may take it at once. The epoch
    /// stays, so the next holder's is higher.
    fn release<'a>(&'a self, session: &'a str, node: &'a str, epoch: u64) -> StoreFuture<'a, ()>;
}

/// What every lease store must do, run over each backend by its own tests.
#[cfg(test)]
pub(super) mod contract {
    use montage_protocol::Role;

    use super::*;
    use crate::error::Error;
    use crate::store::{NewSession, Store, Write};

    fn append(version: u64, epoch: u64) -> Write {
        let Write::Op { session, op, .. } = crate::store::sessions::contract::op(version, version)
        else {
            unreachable!("contract::op is an append")
        };
        Write::Op {
            session,
            op,
            fence: Some(epoch),
        }
    }

    pub async fn lease_semantics(store: &dyn Store) {
        let leases = store.leases().expect("this store keeps leases");
        store
            .create_session("s", NewSession::new("alice", Role::Viewer))
            .await
            .unwrap();
        let ttl = Duration::from_millis(300);
        let s = vec!["s".to_owned()];
        let a = leases.acquire("s", "a", ttl).await.unwrap();
        assert_eq!(a.node, "a");
        // Held: another node is told who holds it.
        assert_eq!(leases.acquire("s", "b", ttl).await.unwrap(), a);
        assert_eq!(
            leases.renew("a", &s, ttl).await.unwrap(),
            vec![("s".into(), a.epoch)]
        );
        assert!(leases.renew("b", &s, ttl).await.unwrap().is_empty());
        store.commit(&[append(1, a.epoch)]).await.unwrap();
        // Expired: b takes it over with a higher epoch, and a's appends are refused from then.
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let b = leases.acquire("s", "b", ttl).await.unwrap();
        assert_eq!(b.node, "b");
        assert!(b.epoch > a.epoch);
        match store.commit(&[append(2, a.epoch)]).await {
            Err(Error::Fenced { session, epoch }) => {
                assert_eq!((session.as_str(), epoch), ("s", a.epoch))
            }
            other => panic!("a stale home appended: {other:?}"),
        }
        assert_eq!(store.ops_after("s", 0, 10).await.unwrap().len(), 1);
        store.commit(&[append(2, b.epoch)]).await.unwrap();
        assert!(leases.renew("a", &s, ttl).await.unwrap().is_empty());
        // Released: another node takes it at once; epochs keep rising.
        leases.release("s", "b", b.epoch).await.unwrap();
        let c = leases.acquire("s", "c", ttl).await.unwrap();
        assert_eq!(c.node, "c");
        assert!(c.epoch > b.epoch);
        // Taken again by its holder (a reloaded session): a new epoch fences the old actor.
        let c2 = leases.acquire("s", "c", ttl).await.unwrap();
        assert!(c2.epoch > c.epoch);
        assert!(matches!(
            store.commit(&[append(3, c.epoch)]).await,
            Err(Error::Fenced { .. })
        ));
        // Appends without a fence (a node without homes) are not checked.
        store
            .commit(&[crate::store::sessions::contract::op(3, 3)])
            .await
            .unwrap();
    }
}
