//! The gateway's durability, media and CLI suites again, on the
//! PostgreSQL backend: the same files, compiled against a harness whose `Server::start` gives
//! each data dir a database of its own (the same one again when a test restarts a server on that
//! dir). They need `MONTAGE_TEST_DATABASE_URL` (`.ci/run` sets it): without it each test says
//! loudly that it did not run, and with `MONTAGE_TEST_REQUIRE_SERVICES` (also set by `.ci/run`)
//! it fails instead, so a PostgreSQL regression cannot pass unnoticed in CI.

mod harness;

// Compiled twice on purpose: once at the crate root on SQLite, once here on PostgreSQL.
#[allow(clippy::duplicate_mod)]
#[path = "../durability.rs"]
mod durability;
#[allow(clippy::duplicate_mod)]
#[path = "../media_env.rs"]
mod media_env;
#[allow(clippy::duplicate_mod)]
#[path = "../sdk_cli.rs"]
mod sdk_cli;
