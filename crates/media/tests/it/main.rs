//! Integration tests for montage-media: real pictures generated here, no binary fixtures.

mod adjust;
mod cache;
mod helpers;
mod intake;
mod render;
mod text;
mod tiers;
mod video;
