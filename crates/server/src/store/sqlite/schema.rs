//! The SQLite schema: the shape of version 1 ([`SCHEMA`] and the tables added to it without a
//! version bump), then numbered steps. A new file is created at version 1 and takes every step
//! like an old one, so one path is tested for both.

/// The schema this build writes; a newer one on disk is refused rather than misread.
pub(super) const SCHEMA_VERSION: i64 = 7;

/// Steps from one schema version to the next: `STEPS[i]` takes version `i + 1` to `i + 2`.
/// Append only; each runs once, in a transaction, and bumps `schema_version`.
pub(super) const STEPS: &[&str] = &[
    // 2: private sessions (#14). Sessions made before keep their `link_role` (`viewer` unless
    // changed); title and last update for `GET /v1/sessions`; deleted sessions' tombstones.
    r#"
ALTER TABLE sessions ADD COLUMN title TEXT;
ALTER TABLE sessions ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN deleted_at INTEGER;
UPDATE sessions SET updated_at = created_at * 1000;
CREATE INDEX IF NOT EXISTS roles_by_user ON roles (user, session);
CREATE INDEX IF NOT EXISTS assets_by_session ON assets (session);
CREATE INDEX IF NOT EXISTS contributions_by_session ON contributions (session);
"#,
    // 3: the column names of PostgreSQL's schema, so both run one SQL text (`store::sql`):
    // `user` (a reserved word there) is `user_id`; tasks record who holds their lease.
    r#"
ALTER TABLE roles RENAME COLUMN user TO user_id;
ALTER TABLE ops RENAME COLUMN user TO user_id;
ALTER TABLE invite_uses RENAME COLUMN user TO user_id;
ALTER TABLE contributions RENAME COLUMN user TO user_id;
ALTER TABLE awards RENAME COLUMN user TO user_id;
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
"#,
    // 4: version history (#16). Versions committed before have no time (NULL).
    r#"
ALTER TABLE ops ADD COLUMN committed_at INTEGER;
CREATE TABLE checkpoints (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
CREATE TABLE named_versions (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    named_by TEXT NOT NULL,
    named_at INTEGER NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
"#,
    // 5: notification inboxes and the app event log (#19); the states of comments by
    // version, for restoring a thread (#16).
    r#"
CREATE TABLE comment_history (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX comment_history_by_comment ON comment_history (session, id, n);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    data TEXT NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    session TEXT NOT NULL,
    actor TEXT NOT NULL,
    time INTEGER NOT NULL,
    read_at INTEGER,
    comment_id TEXT,
    role TEXT,
    group_key TEXT,
    count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX notifications_by_user ON notifications (user_id, time);
CREATE INDEX notifications_by_session ON notifications (session);
CREATE UNIQUE INDEX notifications_unread_group ON notifications (user_id, group_key)
    WHERE read_at IS NULL AND group_key IS NOT NULL;
"#,
    // 6: the showcase and the community newsletter (#19).
    r#"
CREATE TABLE showcase (
    award TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    awarded_by TEXT NOT NULL,
    version INTEGER NOT NULL,
    title TEXT,
    at INTEGER NOT NULL,
    state TEXT NOT NULL,
    newsletter INTEGER
);
CREATE INDEX showcase_by_time ON showcase (at);
CREATE INDEX showcase_by_session ON showcase (session, version);
CREATE INDEX showcase_by_newsletter ON showcase (newsletter, at);
CREATE TABLE newsletters (
    issue INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
"#,
    // 7: end-to-end encrypted sessions (#17): the flag and the key epoch payloads must carry.
    r#"
ALTER TABLE sessions ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 0;
"#,
];

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    link_role TEXT NOT NULL DEFAULT 'viewer',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (session, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ops (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    user TEXT NOT NULL,
    client TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ops TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ops_by_client ON ops (session, client, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    session TEXT NOT NULL,
    version INTEGER NOT NULL,
    format INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL,
    PRIMARY KEY (session, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS comments (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX IF NOT EXISTS comments_by_session ON comments (session, n);
CREATE TABLE IF NOT EXISTS suggestions (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    id TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (session, id)
);
CREATE INDEX IF NOT EXISTS suggestions_by_session ON suggestions (session, n);
"#;

/// Tasks, invites, contributions and awards, created with the rest of [`SCHEMA`] (additive, so
/// the schema version stayed 1: an older build simply ignores them).
pub(super) const TASK_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    session TEXT,
    created_by TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_run_at INTEGER NOT NULL,
    lease_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (state, next_run_at);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, created_at);
CREATE TABLE IF NOT EXISTS invites (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    for_user TEXT,
    expires_at INTEGER,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS invites_by_session ON invites (session);
CREATE TABLE IF NOT EXISTS invite_uses (
    invite TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (invite, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contributions (
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (session, user, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contributions_by_user ON contributions (user);
CREATE TABLE IF NOT EXISTS awards (
    key TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    user TEXT NOT NULL,
    kind TEXT NOT NULL,
    badge TEXT,
    awarded_by TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS awards_by_session ON awards (session);
CREATE INDEX IF NOT EXISTS awards_by_user ON awards (user);
"#;

/// Asset metadata, created with the rest of [`SCHEMA`] (`IF NOT EXISTS`: additive).
pub(super) const ASSET_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    duration REAL,
    bytes INTEGER NOT NULL,
    uploader TEXT NOT NULL,
    session TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
-- The per-user asset quota sums a user's assets (#15).
CREATE INDEX IF NOT EXISTS assets_by_uploader ON assets (uploader);
"#;
