//! The two wire forms side by side: bytes per frame for typing, a slider drag and cursor
//! presence in JSON and in `montage.v1.proto`, what permessage-deflate would take off each
//! (measured here, since the server's WebSocket stack does not offer it), and what encoding and
//! decoding cost.
//!
//! `cargo bench -p montage-protocol --bench wire`

use divan::black_box;
use flate2::{Compress, Compression, FlushCompress};
use montage_ot::{Component, Op, path};
use montage_protocol::{
    ClientMessage, ServerMessage, decode_client, decode_client_binary, decode_server_binary,
    encode, encode_client_binary, encode_server_binary, server_json_to_binary,
};
use serde_json::json;

fn main() {
    sizes();
    divan::main();
}

const SESSION: &str = "8f3a2c1e-5b7d-4e9a-b6c2-1d0e9f8a7b6c";
const N: u64 = 1_000;

/// The `n`th keystroke of someone typing a caption.
fn typing(n: u64) -> ClientMessage {
    ClientMessage::Op {
        session: SESSION.into(),
        base: 1_234 + n,
        seq: 56 + n,
        ops: Op::new(vec![Component::text_insert(
            path!["canvas", "layers", 2, "text"],
            17 + n as usize,
            ["e", "a", "t", " ", "o"][n as usize % 5],
        )]),
        data: None,
        key_epoch: 0,
    }
}

/// The `n`th step of an exposure slider drag.
fn slider(n: u64) -> ClientMessage {
    ClientMessage::Op {
        session: SESSION.into(),
        base: 1_234 + n,
        seq: 56 + n,
        ops: Op::new(vec![Component::Adjust {
            path: path!["canvas", "layers", 3],
            param: "exposure".into(),
            value: 0.25 + n as f64 * 0.0037,
        }]),
        data: None,
        key_epoch: 0,
    }
}

/// What the others receive for a client's edit.
fn broadcast(m: &ClientMessage, n: u64) -> ServerMessage {
    let ClientMessage::Op { ops, .. } = m else {
        unreachable!("an op")
    };
    ServerMessage::Op {
        session: SESSION.into(),
        from: None,
        version: 1_235 + n,
        user: "alice".into(),
        ops: ops.clone(),
        data: None,
        key_epoch: None,
        chain: None,
    }
}

fn cursor(n: u64) -> ServerMessage {
    ServerMessage::Presence {
        session: SESSION.into(),
        user: "bob".into(),
        data: json!({"cursor": {"x": 400 + (n * 7) % 300, "y": 300 + (n * 3) % 200}, "selection": ["l3"]}),
    }
}

/// Mean bytes per frame over a run of frames sent on one connection with permessage-deflate:
/// with context takeover (one compressor for the run, as browsers negotiate by default) or
/// without (a fresh one per message); the 4-byte sync-flush tail is not sent (RFC 7692).
fn deflated(frames: &[Vec<u8>], takeover: bool) -> f64 {
    let mut c = Compress::new(Compression::default(), false);
    let mut total = 0usize;
    for f in frames {
        if !takeover {
            c.reset();
        }
        let mut out = Vec::with_capacity(f.len() + 64);
        c.compress_vec(f, &mut out, FlushCompress::Sync)
            .expect("deflate");
        total += out.len().saturating_sub(4);
    }
    total as f64 / frames.len() as f64
}

fn mean(frames: &[Vec<u8>]) -> f64 {
    frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64
}

fn row(name: &str, json: Vec<Vec<u8>>, bin: Vec<Vec<u8>>) {
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        mean(&json),
        mean(&bin),
        deflated(&json, true),
        deflated(&bin, true),
        deflated(&bin, false),
    );
}

fn sizes() {
    println!("bytes per frame, mean of {N} consecutive frames:");
    println!(
        "| frame | JSON | binary | JSON + deflate | binary + deflate | binary + deflate, no context takeover |"
    );
    println!("|---|---|---|---|---|---|");
    let client = |f: fn(u64) -> ClientMessage| {
        let json = (0..N)
            .map(|n| serde_json::to_vec(&f(n)).expect("json"))
            .collect();
        let bin = (0..N).map(|n| encode_client_binary(&f(n), None)).collect();
        (json, bin)
    };
    let server = |f: &dyn Fn(u64) -> ServerMessage| {
        let json = (0..N).map(|n| encode(&f(n)).into_bytes()).collect();
        let bin = (0..N).map(|n| encode_server_binary(&f(n), None)).collect();
        (json, bin)
    };
    let (j, b) = client(typing);
    row("typing: `op` sent", j, b);
    let (j, b) = server(&|n| broadcast(&typing(n), n));
    row("typing: `op` received", j, b);
    let (j, b) = server(&|n| ServerMessage::Ack {
        session: SESSION.into(),
        seq: 56 + n,
        version: 1_235 + n,
        chain: None,
    });
    row("typing: `ack`", j, b);
    let (j, b) = client(slider);
    row("slider step: `op` sent", j, b);
    let (j, b) = server(&|n| broadcast(&slider(n), n));
    row("slider step: `op` received", j, b);
    let (j, b) = server(&cursor);
    row("cursor `presence` received", j, b);
}

#[divan::bench]
fn decode_typing_json(b: divan::Bencher) {
    let text = serde_json::to_string(&typing(7)).expect("json");
    b.bench(|| decode_client(black_box(&text)).is_ok());
}

#[divan::bench]
fn decode_typing_binary(b: divan::Bencher) {
    let bytes = encode_client_binary(&typing(7), None);
    b.bench(|| decode_client_binary(black_box(&bytes)).is_ok());
}

#[divan::bench]
fn encode_broadcast_json(b: divan::Bencher) {
    let m = broadcast(&typing(7), 7);
    b.bench(|| encode(black_box(&m)).len());
}

#[divan::bench]
fn encode_broadcast_binary(b: divan::Bencher) {
    let m = broadcast(&typing(7), 7);
    b.bench(|| encode_server_binary(black_box(&m), None).len());
}

/// What the server does once per broadcast for its binary connections: its JSON frame to the
/// binary one.
#[divan::bench]
fn translate_broadcast_json_to_binary(b: divan::Bencher) {
    let text = encode(&broadcast(&typing(7), 7));
    b.bench(|| server_json_to_binary(black_box(&text)).map(|v| v.len()));
}

#[divan::bench]
fn decode_broadcast_binary(b: divan::Bencher) {
    let bytes = encode_server_binary(&broadcast(&typing(7), 7), None);
    b.bench(|| decode_server_binary(black_box(&bytes)).is_ok());
}
