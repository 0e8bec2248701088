//! The shared test kit: in-process servers on each backend (`montage_testkit::Server`,
//! `backend_tests!`), the WebSocket test client, tokens and HTTP helpers.

pub use montage_testkit::*;
