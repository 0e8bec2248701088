//! The Collaboration Gateway: the HTTP router, the WebSocket upgrade and each connection's
//! reader and writer, rate limits and connection quality (bandwidth tiers).

pub mod limits;
pub mod listener;
pub mod quality;
pub mod requests;
mod routes;
pub mod socket;
pub mod webapp;
mod writer;

pub use routes::router;
