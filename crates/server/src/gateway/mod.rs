//! The Collaboration Gateway: the HTTP router, the WebSocket upgrade and each connection's
//! reader and writer, authentication, rate limits and connection quality (bandwidth tiers).

pub mod auth;
pub mod limits;
pub mod quality;
mod routes;
pub mod socket;
pub mod webapp;

pub use routes::router;
