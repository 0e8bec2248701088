//! End-to-end tests of what needs the `montage` binary itself: kill -9 and SIGTERM, a server
//! with its own environment, the CLI commands, several processes on PostgreSQL and NATS, the
//! browser. Each starts the binary on port 0 with a temp data dir; the suites that run on both
//! backends list their tests in `backend_tests!`. Everything else runs in-process in
//! `crates/server/tests/it` and `crates/client/tests/it`.

mod bus;
mod durability;
mod harness;
mod hostile;
mod media_env;
mod operator;
mod quickstart;
mod scale;
mod sdk_cli;
mod web;

pub use harness::*;
