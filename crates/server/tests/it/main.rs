//! The server end to end: each test starts servers in-process on port 0 (`harness::Server`) and
//! talks to them over real WebSockets and HTTP, once per backend (`backend_tests!`: SQLite, and
//! PostgreSQL at `MONTAGE_TEST_DATABASE_URL`). What needs the `montage` binary itself (kill -9,
//! SIGTERM, several processes, the CLI, the browser) stays in `crates/cli/tests/it`.

mod access;
mod comments;
mod encrypted;
mod harness;
mod history;
mod http_limits;
mod large_state;
mod media;
mod notifications;
mod operator;
mod presence;
mod protocol;
mod ranges;
mod rate;
mod sharing;
mod sync_limits;
