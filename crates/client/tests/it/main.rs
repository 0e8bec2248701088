//! The Rust SDK against real servers started in-process (`montage_testkit::Server`), on each
//! backend: random concurrent edits through a fault-injecting proxy, offline editing, undo and
//! redo, and a real editing trace.

mod proxy;
mod sdk;
mod sdk_trace;
