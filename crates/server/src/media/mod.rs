//! The Media Processor's server side: asset upload and download, previews and video frames over
//! HTTP, live preview subscriptions, and the blob stores assets live in. Rendering itself is the
//! pure `montage-media` crate.

pub mod blobs;
pub mod http;
pub(crate) mod live;

pub use http::Media;
