#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod apply;
mod component;
mod delta;
mod diff;
mod error;
#[cfg(feature = "arbitrary")]
pub mod fuzzing;
mod op;
pub mod orset;
mod path;
mod rope;
pub mod schema;
mod text;
mod transform;
mod value;

pub use component::{Component, Rect, Wire};
pub use delta::{CompressedDelta, MediaDelta, Run};
pub use diff::{diff, diff_at, diff_under, find_element, restore_element};
pub use error::{OtError, Result};
pub use op::Op;
pub use path::{Path, Seg};
pub use text::{TextOp, TextPart, TextStep};
pub use transform::{MIN_CLIP_LENGTH, Side};
pub use value::{Text, Value};

/// Paths deeper than this are refused when decoded.
pub const MAX_PATH_DEPTH: usize = 64;
/// List indices, text positions and counts in a decoded edit, at most (2³² − 1).
pub const MAX_INDEX: usize = u32::MAX as usize;
/// Components in one edit, at most.
pub const MAX_COMPONENTS: usize = 10_000;
