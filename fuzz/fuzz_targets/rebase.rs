//! An edit rebased past a run of later edits converges with the client's view (`montage_ot::fuzzing::check_rebase`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = montage_ot::fuzzing::check_rebase(&mut arbitrary::Unstructured::new(data));
});
