//! Integration tests for montage-media: real pictures generated here, no binary fixtures.

mod adjust;
mod cache;
mod fuzz;
mod helpers;
mod intake;
mod render;
mod text;
mod tiers;
mod video;
