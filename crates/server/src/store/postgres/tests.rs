use super::*;

fn op(v: u64, seq: u64) -> Write {
    Write::Op {
        session: "s".into(),
        op: StoredOp {
            version: v,
            user: "u".into(),
            client: "c".into(),
            seq,
            ops: "[]".into(),
        },
    }
}

#[tokio::test]
async fn postgres_round_trip_and_version_conflicts() {
    let Some(db) = testdb::create("postgres_round_trip_and_version_conflicts").await else {
        return;
    };
    let s = PgStore::connect(&db.url, 2).await.unwrap();
    // Migrating again (a second node starting) is a no-op.
    s.migrate(MIGRATIONS).await.unwrap();
    assert!(s.load("s").await.unwrap().is_none());
    s.create_session("s", NewSession::new("alice", Role::Viewer))
        .await
        .unwrap();
    s.create_session("s", NewSession::new("bob", Role::Viewer))
        .await
        .unwrap();
    s.commit(&[op(1, 1), op(2, 2)]).await.unwrap();
    match s.commit(&[op(3, 3), op(2, 9)]).await {
        Err(Error::VersionConflict { session, version }) => {
            assert_eq!((session.as_str(), version), ("s", 2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The failed batch left nothing behind.
    assert_eq!(s.ops_after("s", 0, 100).await.unwrap().len(), 2);
    s.save_snapshot(
        "s",
        &Snapshot {
            version: 1,
            state: "{}".into(),
        },
    )
    .await
    .unwrap();
    s.set_role("s", "bob", Role::Editor).await.unwrap();
    let l = s.load("s").await.unwrap().unwrap();
    assert_eq!(l.meta.owner, "alice");
    assert_eq!(l.meta.role_of("alice"), Role::Owner);
    assert_eq!(l.meta.role_of("bob"), Role::Editor);
    assert_eq!(l.meta.role_of("carol"), Role::Viewer);
    assert_eq!(l.snapshot.unwrap().version, 1);
    assert_eq!(l.ops.iter().map(|o| o.version).collect::<Vec<_>>(), vec![2]);
    assert_eq!(s.find_seq("s", "u", "c", 2).await.unwrap(), Some(2));
    assert_eq!(s.find_seq("s", "u", "c", 3).await.unwrap(), None);
    assert_eq!(s.find_seq("s", "mallory", "c", 2).await.unwrap(), None);
    assert_eq!(s.max_seq("s", "u", "c").await.unwrap(), Some(2));
    assert_eq!(s.max_seq("s", "u", "d").await.unwrap(), None);
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
