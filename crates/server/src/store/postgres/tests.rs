use montage_protocol::Role;

use super::*;
use crate::store::Store;

#[tokio::test]
async fn postgres_round_trip_and_version_conflicts() {
    let Some(db) = testdb::create("postgres_round_trip_and_version_conflicts").await else {
        return;
    };
    let s = PgStore::connect(&db.url, 2).await.unwrap();
    // Migrating again (a second node starting) is a no-op.
    s.migrate(MIGRATIONS).await.unwrap();
    crate::store::sessions::contract::round_trip(&s).await;
    // PostgreSQL names the very version that lost the race.
    let ours = crate::store::sessions::contract::op;
    match s.commit(&[ours(3, 3), ours(2, 9)]).await {
        Err(Error::VersionConflict { session, version }) => {
            assert_eq!((session.as_str(), version), ("s", 2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    s.close().await.unwrap();
    // A newer schema written by a later build is refused.
    let s = PgStore::connect(&db.url, 1).await.unwrap();
    sqlx::query("INSERT INTO montage_migrations VALUES (999, 'future', 0)")
        .execute(s.pool())
        .await
        .unwrap();
    assert!(matches!(
        s.migrate(MIGRATIONS).await,
        Err(Error::UnsupportedSchema { found: 999, .. })
    ));
    s.close().await.unwrap();
    db.drop_db().await;
}

/// Home-node leases and the fence on appends (DESIGN §9.7).
#[tokio::test]
async fn postgres_leases() {
    let Some(db) = testdb::create("postgres_leases").await else {
        return;
    };
    let s = PgStore::connect(&db.url, 2).await.unwrap();
    crate::store::leases::contract::lease_semantics(&s).await;
    s.close().await.unwrap();
    db.drop_db().await;
}

/// A database of a build before migration 5: its sessions keep their link role (`viewer`,
/// the old default) and are listed with their head versions.
#[tokio::test]
async fn migration_5_keeps_the_link_role_of_existing_sessions() {
    let Some(db) = testdb::create("migration_5_keeps_the_link_role").await else {
        return;
    };
    let s = PgStore::connect_without_migrating(&db.url).await;
    s.migrate(&MIGRATIONS[..4]).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO sessions (id, owner, created_at) VALUES ('old', 'alice', 1700000000);
         INSERT INTO roles VALUES ('old', 'alice', 'owner');
         INSERT INTO ops VALUES ('old', 1, 'alice', 'c', 1, '[]'), ('old', 2, 'alice', 'c', 2, '[]');",
    )
    .execute(s.pool())
    .await
    .unwrap();
    s.migrate(MIGRATIONS).await.unwrap();
    let meta = s.meta("old").await.unwrap().unwrap();
    assert_eq!((meta.link_role, meta.title), (Role::Viewer, None));
    let list = s.user_sessions("alice", 10).await.unwrap();
    assert_eq!((list[0].version, list[0].updated), (2, 1_700_000_000_000));
    s.close().await.unwrap();
    db.drop_db().await;
}
