//! One integration-test binary for montage-protocol.

mod frames;
