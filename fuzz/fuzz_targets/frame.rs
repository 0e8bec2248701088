//! Client and server frames from JSON text, protobuf comments and suggestions: no panics, and
//! what decodes round-trips (`montage_protocol::fuzzing::check_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| montage_protocol::fuzzing::check_frame(data));
