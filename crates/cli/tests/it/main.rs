//! End-to-end tests: each starts the real `montage` binary on port 0 with a temp data dir and
//! talks to it over real WebSockets and HTTP.

mod bus;
#[allow(clippy::duplicate_mod)] // also compiled as `postgres::durability`
mod durability;
mod harness;
#[allow(clippy::duplicate_mod)] // also compiled as `postgres::media_env`
mod media_env;
mod postgres;
mod scale;
#[allow(clippy::duplicate_mod)] // also compiled as `postgres::sdk_cli`
mod sdk_cli;
mod web;

pub use harness::*;
