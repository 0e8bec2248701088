//! The frame-decoding check (feature `fuzzing`), shared by the cargo-fuzz target `frame` in
//! `fuzz/` and the replay test below, so a crash found by either replays in the other.

use prost::Message;

use crate::social::{Comment, Suggestion, pb};
use crate::{
    ClientFrame, decode_client, decode_client_binary, decode_server, decode_server_binary,
    encode_client_binary, encode_server_binary,
};

/// Decodes `data` every way a peer's bytes are decoded: as a client's JSON text frame, as a
/// server's, as binary (`montage.v1.proto`) client and server frames, and as the protobuf
/// comment and suggestion. Nothing may panic; a client frame that decodes re-encodes (as the
/// SDKs encode it) to a frame that decodes to the same message — in either form, and a binary
/// one also as JSON — and a protobuf comment or suggestion that converts converts back to the
/// same value.
pub fn check_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(frame) = decode_client(text) {
            // Compared as the wire writes them: a decoded edit keeps empty text steps (their
            // position is still checked at apply) but writes them as nothing (docs/OT.md).
            let json = wire(&frame);
            match decode_client(&json.to_string()) {
                Ok(again) => assert_eq!(wire(&again), json, "client frame round trip"),
                Err(e) => panic!("a re-encoded frame did not decode: {e}\n {json}"),
            }
        }
        let _ = decode_server(text);
    }
    if let Ok(frame) = decode_client_binary(data) {
        let json = wire(&frame);
        let bytes = encode_client_binary(&frame.msg, frame.rid.as_ref());
        match decode_client_binary(&bytes) {
            Ok(again) => assert_eq!(wire(&again), json, "binary client frame round trip"),
            Err(e) => panic!("a re-encoded binary frame did not decode: {e}\n {json}"),
        }
        // What the binary client sent is what a JSON client could have sent.
        match decode_client(&json.to_string()) {
            Ok(again) => assert_eq!(wire(&again), json, "binary client frame as JSON"),
            Err(e) => panic!("a binary frame's JSON form did not decode: {e}\n {json}"),
        }
    }
    if let Ok((msg, rid)) = decode_server_binary(data) {
        let bytes = encode_server_binary(&msg, rid.as_ref());
        let again = decode_server_binary(&bytes).map(|(m, _)| m);
        assert_eq!(
            json(again),
            json(Ok::<_, ()>(msg)),
            "binary server frame round trip"
        );
    }
    if let Ok(c) = pb::MediaComment::decode(data)
        && let Ok(c) = Comment::try_from(c)
    {
        let back = pb::MediaComment::try_from(&c).and_then(Comment::try_from);
        assert_eq!(
            json(back),
            json(Ok::<_, ()>(c)),
            "comment protobuf round trip"
        );
    }
    if let Ok(s) = pb::Suggestion::decode(data)
        && let Ok(s) = Suggestion::try_from(s)
    {
        let back = pb::Suggestion::try_from(&s).and_then(Suggestion::try_from);
        assert_eq!(
            json(back),
            json(Ok::<_, ()>(s)),
            "suggestion protobuf round trip"
        );
    }
}

/// A client frame as the SDKs encode it (with its `rid`).
fn wire(frame: &ClientFrame) -> serde_json::Value {
    let mut json = match serde_json::to_value(&frame.msg) {
        Ok(j) => j,
        Err(e) => panic!("a decoded frame did not encode: {e}"),
    };
    if let (Some(rid), Some(m)) = (&frame.rid, json.as_object_mut()) {
        m.insert("rid".into(), rid.clone());
    }
    json
}

/// Compared as JSON, the form clients see: a NaN coordinate (protobuf allows one) is `null`
/// on both sides instead of unequal to itself.
fn json<T: serde::Serialize, E: std::fmt::Debug>(
    r: Result<T, E>,
) -> Result<serde_json::Value, String> {
    r.map_err(|e| format!("{e:?}"))
        .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string()))
}
