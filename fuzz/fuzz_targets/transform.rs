//! TP1 for pairs of concurrent edits (`montage_ot::fuzzing::check_transform`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = montage_ot::fuzzing::check_transform(&mut arbitrary::Unstructured::new(data));
});
