//! End-to-end tests: each starts the real `montage` binary on port 0 with a temp data dir and
//! talks to it over real WebSockets and HTTP.

mod durability;
mod harness;
mod media;
mod presence;
mod protocol;
mod proxy;
mod sdk;
mod sdk_cli;
mod sdk_trace;
mod sharing;
mod web;

pub use harness::*;
