//! The fuzz target `frame`'s check (`montage_protocol::fuzzing`, shared with `fuzz/`) as an
//! ordinary test: seeded inputs, then every file of the committed corpus.

use montage_protocol::fuzzing::check_frame;
use montage_protocol::{ClientMessage, decode_client, decode_client_binary, decode_server_binary};

/// SplitMix64, for reproducible inputs.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn frame_corpus() {
    let files = montage_ot::fuzzing::corpus("frame");
    for (p, data) in &files {
        eprintln!("{}", p.display());
        check_frame(data);
    }
    // The corpus reaches past the JSON parser: most of its text frames decode.
    let decoded = files
        .iter()
        .filter(|(_, d)| std::str::from_utf8(d).is_ok_and(|t| decode_client(t).is_ok()))
        .count();
    assert!(
        decoded * 3 >= files.len(),
        "{decoded} of {} decode",
        files.len()
    );
    // And past the protobuf decoder: the binary seeds decode as client or server frames.
    let binary = files
        .iter()
        .filter(|(_, d)| decode_client_binary(d).is_ok() || decode_server_binary(d).is_ok())
        .count();
    assert!(binary >= 4, "{binary} binary frames decode");
}

/// Random bytes, and each corpus frame with random bytes overwritten.
#[test]
fn frame_seeded() {
    let files = montage_ot::fuzzing::corpus("frame");
    for seed in 0..5_000u64 {
        let noise = bytes(seed, 1 + (seed % 97) as usize);
        check_frame(&noise);
        let (_, base) = &files[seed as usize % files.len()];
        let mut mutated = base.clone();
        for (k, b) in noise.iter().take(3).enumerate() {
            let at = (usize::from(*b) * 31 + k * 7) % mutated.len().max(1);
            if let Some(x) = mutated.get_mut(at) {
                *x = noise[noise.len() - 1 - k];
            }
        }
        check_frame(&mutated);
    }
}

/// Issue #15 (1): a frame within the limits can carry a 64-segment path and a 124-level value.
#[test]
fn the_deepest_edit_a_frame_can_carry_decodes() {
    let path = std::iter::once("\"meta\"".to_owned())
        .chain((1..64).map(|_| "\"d\"".to_owned()))
        .collect::<Vec<_>>()
        .join(",");
    let value = "{\"d\":".repeat(123) + "{}" + &"}".repeat(123);
    let frame = format!(
        r#"{{"type":"op","session":"s","base":0,"seq":1,"ops":[{{"op":"set","path":[{path}],"value":{value}}}]}}"#
    );
    let decoded = decode_client(&frame).expect("within the limits");
    assert!(matches!(decoded.msg, ClientMessage::Op { .. }));
    check_frame(frame.as_bytes());
    // One level more and the parser refuses it.
    let deeper = frame
        .replacen("\"value\":", "\"value\":[", 1)
        .replacen("}]}", "]}]}", 1);
    assert!(decode_client(&deeper).is_err());
}

/// Found by the `frame` target: serde_json's default float parser may round a long literal one
/// ulp off, so a number re-encoded (shortest form) came back different and a client could
/// hold a different number than the server. `float_roundtrip` parses exactly.
#[test]
fn repro_float_literals_round_trip_exactly() {
    let frame = br#"{"type":"presence","session":"s1","data":{"wel":[1,21.0e300]}}"#;
    check_frame(frame);
}

/// Found by the fuzz target `frame`: an empty text step (`del` 0 at a position past any text)
/// decodes as a component, kept so its position is checked at apply, but is written as nothing;
/// the round trip compares what the wire writes.
#[test]
fn repro_an_empty_text_step_round_trips_as_the_wire_writes_it() {
    let frame = br#"{"type":"op","session":"s1","base":0,"seq":3,"ops":[{"op":"add","path":["meta","n"],"value":-0.25},{"op":"text","path":["title"],"pos":4294967295,"del":0}]}"#;
    check_frame(frame);
}
