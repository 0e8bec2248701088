//! One integration-test binary for montage-protocol.

mod binary;
mod frames;
