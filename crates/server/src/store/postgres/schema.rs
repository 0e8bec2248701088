//! The PostgreSQL schema: numbered steps, applied in order under an advisory lock and recorded
//! in `montage_migrations` (`PgStore::migrate`).

/// One numbered schema step.
pub struct Migration {
    pub id: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every schema step this build knows, oldest first. Append only; never edit a released step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: 1,
        name: "sessions, roles, ops, snapshots",
        sql: r#"
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    link_role TEXT NOT NULL DEFAULT 'viewer',
    created_at BIGINT NOT NULL
);
CREATE TABLE roles (
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (session, user_id)
);
CREATE TABLE ops (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    client TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ops TEXT NOT NULL,
    PRIMARY KEY (session, version)
);
CREATE INDEX ops_by_client ON ops (session, user_id, client, seq);
CREATE TABLE snapshots (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    format INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
);
"#,
    },
    Migration {
        id: 2,
        name: "comments, suggestions, tasks, invites, contributions, awards",
        sql: TASK_SCHEMA,
    },
    // Issue #7: asset metadata (`store::assets`).
    Migration {
        id: 3,
        name: "assets",
        sql: ASSET_SCHEMA,
    },
    // The cluster's id: nodes sharing this database are one cluster and scope their NATS
    // subjects with it (`bus::session_subject`).
    Migration {
        id: 4,
        name: "cluster id",
        sql: r#"
CREATE TABLE montage_cluster (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
INSERT INTO montage_cluster (id, created_at)
    VALUES (md5(random()::text || clock_timestamp()::text), extract(epoch FROM now())::BIGINT);
"#,
    },
    // Issue #14: private sessions. Sessions made before keep their `link_role` (`viewer` unless
    // changed); title and last update for `GET /v1/sessions`; deleted sessions' tombstones.
    Migration {
        id: 5,
        name: "session titles, last updates, tombstones and the lookups of private sessions",
        sql: r#"
ALTER TABLE sessions ADD COLUMN title TEXT;
ALTER TABLE sessions ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN deleted_at BIGINT;
UPDATE sessions SET updated_at = created_at * 1000;
CREATE INDEX roles_by_user ON roles (user_id, session);
CREATE INDEX assets_by_session ON assets (session);
CREATE INDEX contributions_by_session ON contributions (session);
"#,
    },
    // Issue #15: the per-user asset quota sums a user's assets.
    Migration {
        id: 6,
        name: "assets by uploader",
        sql: "CREATE INDEX assets_by_uploader ON assets (uploader);",
    },
    // Issue #16: version history. Versions committed before have no time (NULL).
    Migration {
        id: 7,
        name: "commit times, checkpoints, named versions",
        sql: r#"
ALTER TABLE ops ADD COLUMN committed_at BIGINT;
CREATE TABLE checkpoints (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
);
CREATE TABLE named_versions (
    session TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    named_by TEXT NOT NULL,
    named_at BIGINT NOT NULL,
    PRIMARY KEY (session, version)
);
"#,
    },
    // Issue #19: notification inboxes.
    Migration {
        id: 8,
        name: "notifications, app events, comment history",
        sql: r#"
CREATE TABLE comment_history (
    n BIGSERIAL PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX comment_history_by_comment ON comment_history (session, id, n);
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    data TEXT NOT NULL,
    time BIGINT NOT NULL
);
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    session TEXT NOT NULL,
    actor TEXT NOT NULL,
    time BIGINT NOT NULL,
    read_at BIGINT,
    comment_id TEXT,
    role TEXT,
    group_key TEXT,
    count BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX notifications_by_user ON notifications (user_id, time);
CREATE INDEX notifications_by_session ON notifications (session);
CREATE UNIQUE INDEX notifications_unread_group ON notifications (user_id, group_key)
    WHERE read_at IS NULL AND group_key IS NOT NULL;
"#,
    },
    // Issue #19: the showcase and the community newsletter.
    Migration {
        id: 9,
        name: "showcase, newsletters",
        sql: r#"
CREATE TABLE showcase (
    award TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    awarded_by TEXT NOT NULL,
    version BIGINT NOT NULL,
    title TEXT,
    at BIGINT NOT NULL,
    state TEXT NOT NULL,
    newsletter BIGINT
);
CREATE INDEX showcase_by_time ON showcase (at);
CREATE INDEX showcase_by_session ON showcase (session, version);
CREATE INDEX showcase_by_newsletter ON showcase (newsletter, at);
CREATE TABLE newsletters (
    issue BIGINT PRIMARY KEY,
    at BIGINT NOT NULL
);
"#,
    },
    // Issue #21: a home node per loaded session. A lease row outlives its session (a deleted
    // session's id may come back; its epochs must keep rising), and each op keeps the epoch of
    // the home that appended it.
    Migration {
        id: 10,
        name: "session leases, op epochs",
        sql: r#"
CREATE TABLE session_leases (
    session TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_leases_by_node ON session_leases (node);
ALTER TABLE ops ADD COLUMN epoch BIGINT;
"#,
    },
    // Issue #17: end-to-end encrypted sessions: the flag and the key epoch payloads must carry.
    Migration {
        id: 11,
        name: "encrypted sessions",
        sql: r#"
ALTER TABLE sessions ADD COLUMN encrypted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN key_epoch BIGINT NOT NULL DEFAULT 0;
"#,
    },
];

/// Migration step 2: comments, suggestions, tasks, invites, contributions and awards. Numbers
/// are BIGINT so they decode like SQLite's INTEGER.
const TASK_SCHEMA: &str = r#"
CREATE TABLE comments (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX comments_by_session ON comments (session, n);
CREATE TABLE suggestions (
    n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX suggestions_by_session ON suggestions (session, n);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    created_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_run_at BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tasks_due ON tasks (state, next_run_at);
CREATE INDEX tasks_by_session ON tasks (session, created_at);
CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    for_user TEXT,
    expires_at BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX invites_by_session ON invites (session);
CREATE TABLE invite_uses (
    invite TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (invite, user_id)
);
CREATE TABLE contributions (
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (session, user_id, kind)
);
CREATE INDEX contributions_by_user ON contributions (user_id);
CREATE TABLE awards (
    key TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    badge TEXT,
    awarded_by TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX awards_by_session ON awards (session);
CREATE INDEX awards_by_user ON awards (user_id);
"#;

/// Migration step 3: asset metadata.
const ASSET_SCHEMA: &str = r#"
CREATE TABLE assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    duration DOUBLE PRECISION,
    bytes BIGINT NOT NULL,
    uploader TEXT NOT NULL,
    session TEXT,
    created_at BIGINT NOT NULL
);
"#;
