//! The Rust SDK against real servers started in-process (`montage_testkit::Server`), on each
//! backend: refused tokens and TLS, random concurrent edits through a fault-injecting proxy, offline editing, undo and
//! redo, a real editing trace, and access (token refresh, link access, session management).

mod access;
mod auth;
mod encrypted;
mod proxy;
mod sdk;
mod sdk_trace;
