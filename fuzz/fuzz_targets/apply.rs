//! `apply` of structured edits, raw and deep ones included (`montage_ot::fuzzing::check_apply`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = montage_ot::fuzzing::check_apply(&mut arbitrary::Unstructured::new(data));
});
