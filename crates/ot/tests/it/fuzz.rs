//! Random documents and random valid edits, driven by a seed so failures replay exactly.

use montage_ot::fuzzing::{len_at, text_len};
use montage_ot::{Component, Op, Rect, Value, path};

/// SplitMix64: small, seedable, good enough for test generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    /// A number exactly representable so sums are exact in any order.
    pub fn num(&mut self) -> f64 {
        (self.below(200) as f64 - 100.0) / 4.0
    }
    pub fn word(&mut self) -> String {
        const ALPHABET: &[&str] = &["a", "b", "c", "x", "é", "漢", "🎬", " "];
        (0..1 + self.below(4))
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }
    pub fn id(&mut self) -> String {
        format!("id{}", self.below(1_000_000))
    }
}

fn num(n: f64) -> Value {
    Value::Num(n)
}

pub fn image_layer(r: &mut Rng) -> Value {
    let mut l = Value::obj([
        ("id", Value::str(r.id())),
        ("kind", Value::str("image")),
        ("asset", Value::str("a1")),
        ("x", num(r.num())),
        ("y", num(r.num())),
        ("w", num(100.0)),
        ("h", num(50.0)),
    ]);
    if r.chance(0.5)
        && let Value::Obj(m) = &mut l
    {
        m.insert("rotation".into(), num(90.0));
        m.insert("adjust".into(), Value::obj([("brightness", num(0.25))]));
    }
    l
}

pub fn text_layer(r: &mut Rng) -> Value {
    Value::obj([
        ("id", Value::str(r.id())),
        ("kind", Value::str("text")),
        ("text", Value::str(r.word())),
        ("x", num(r.num())),
        ("y", num(r.num())),
        ("size", num(12.0)),
        ("color", Value::str("#fff")),
    ])
}

pub fn clip(r: &mut Rng, start: f64) -> Value {
    let len = 1.0 + r.below(8) as f64;
    let inp = r.below(4) as f64;
    Value::obj([
        ("id", Value::str(r.id())),
        ("asset", Value::str("v1")),
        ("start", num(start)),
        ("in", num(inp)),
        ("out", num(inp + len)),
        ("gain", num(1.0)),
    ])
}

/// A document with a few layers, two tracks of clips, and free-form meta with a list.
pub fn doc(r: &mut Rng) -> Value {
    let mut d = Value::new_document();
    let Value::Obj(root) = &mut d else {
        unreachable!()
    };
    root.insert("title".into(), Value::str(r.word() + r.word().as_str()));
    let layers: Vec<Value> = (0..r.below(4))
        .map(|_| {
            if r.chance(0.7) {
                image_layer(r)
            } else {
                text_layer(r)
            }
        })
        .collect();
    if let Some(Value::Obj(c)) = root.get_mut("canvas") {
        c.insert("layers".into(), Value::Arr(layers));
    }
    let tracks: Vec<Value> = (0..2)
        .map(|t| {
            let clips = (0..r.below(4)).map(|k| clip(r, k as f64 * 10.0)).collect();
            Value::obj([
                ("id", Value::str(format!("t{t}"))),
                ("kind", Value::str("video")),
                ("clips", Value::Arr(clips)),
            ])
        })
        .collect();
    if let Some(Value::Obj(t)) = root.get_mut("timeline") {
        t.insert("tracks".into(), Value::Arr(tracks));
    }
    let list: Vec<Value> = (0..r.below(5)).map(|_| num(r.num())).collect();
    root.insert(
        "meta".into(),
        Value::obj([
            ("list", Value::Arr(list)),
            ("n", num(1.0)),
            ("note", Value::str(r.word())),
        ]),
    );
    d
}

/// One random component valid against `d`.
pub fn component(r: &mut Rng, d: &Value) -> Component {
    let layers = path!["canvas", "layers"];
    let nl = len_at(d, &layers);
    let track = path!["timeline", "tracks", r.below(2), "clips"];
    let nc = len_at(d, &track);
    let list = path!["meta", "list"];
    let nlist = len_at(d, &list);
    loop {
        let c = match r.below(24) {
            0..=2 => {
                let p = path!["title"];
                let len = text_len(d, &p);
                if len > 0 && r.chance(0.4) {
                    let pos = r.below(len);
                    let n = 1 + r.below((len - pos).min(3));
                    Component::text_delete(p, pos, n)
                } else {
                    Component::text_insert(p, r.below(len + 1), r.word())
                }
            }
            3 => {
                let p = path!["meta", "note"];
                Component::text_insert(p.clone(), r.below(text_len(d, &p) + 1), r.word())
            }
            4 => Component::set(
                path!["meta", if r.chance(0.5) { "n" } else { "k" }],
                r.num(),
            ),
            5 if d.at(path!["meta", "k"].segs()).is_some() => Component::del(path!["meta", "k"]),
            6 => Component::add(path!["meta", "n"], r.num()),
            7 => Component::ins(list.child(r.below(nlist + 1)), r.num()),
            8 if nlist > 0 => Component::del(list.child(r.below(nlist))),
            9 if nlist > 0 => Component::mov(list.child(r.below(nlist)), r.below(nlist)),
            10 if nlist > 0 => Component::set(list.child(r.below(nlist)), r.num()),
            11 => {
                let l = if r.chance(0.7) {
                    image_layer(r)
                } else {
                    text_layer(r)
                };
                Component::ins(layers.child(r.below(nl + 1)), l)
            }
            12 if nl > 0 => Component::del(layers.child(r.below(nl))),
            13 if nl > 0 => Component::mov(layers.child(r.below(nl)), r.below(nl)),
            14 if nl > 0 => {
                let lp = layers.child(r.below(nl));
                match r.below(3) {
                    0 => Component::add(lp.child("x"), r.num()),
                    1 => Component::set(lp.child("y"), r.num()),
                    _ => Component::set(lp, image_layer(r)),
                }
            }
            15 | 16 if nl > 0 => {
                let i = r.below(nl);
                let lp = layers.child(i);
                let is_image = d
                    .at(lp.child("kind").segs())
                    .and_then(Value::as_text)
                    .is_some_and(|t| *t == *"image");
                if !is_image {
                    let tp = lp.child("text");
                    Component::text_insert(tp.clone(), r.below(text_len(d, &tp) + 1), r.word())
                } else {
                    match r.below(4) {
                        0 => Component::Crop {
                            path: lp,
                            rect: Rect {
                                x: r.below(10) as f64,
                                y: r.below(10) as f64,
                                w: 1.0 + r.below(50) as f64,
                                h: 1.0 + r.below(50) as f64,
                            },
                        },
                        1 => Component::Rotate {
                            path: lp,
                            by: 90.0 * (1 + r.below(3)) as f64,
                        },
                        2 => {
                            let param =
                                ["brightness", "contrast", "saturation", "exposure"][r.below(4)];
                            Component::Adjust {
                                path: lp,
                                param: param.into(),
                                value: (r.below(17) as f64 - 8.0) / 8.0,
                            }
                        }
                        _ if d.at(lp.child("adjust").segs()).is_some() => {
                            Component::del(lp.child("adjust"))
                        }
                        _ => Component::set(lp.child("opacity"), 0.5),
                    }
                }
            }
            17 => {
                let start = r.below(50) as f64;
                Component::ins(track.child(r.below(nc + 1)), clip(r, start))
            }
            18 if nc > 0 => Component::del(track.child(r.below(nc))),
            19 if nc > 0 => Component::mov(track.child(r.below(nc)), r.below(nc)),
            20 | 21 if nc > 0 => {
                let cp = track.child(r.below(nc));
                let f = |k: &str| {
                    d.at(cp.child(k).segs())
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                };
                let (start, inp, out) = (f("start"), f("in"), f("out"));
                let len = out - inp;
                let at = start + (1 + r.below(7)) as f64 * len / 8.0;
                Component::Split {
                    path: cp,
                    at,
                    media: inp + (at - start),
                    id: r.id(),
                }
            }
            22 if nc > 0 => {
                let cp = track.child(r.below(nc));
                let f = |k: &str| {
                    d.at(cp.child(k).segs())
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0)
                };
                let d0 = r.below(4) as f64 * 0.5;
                let (s, i, o) = (f("start"), f("in"), f("out"));
                match r.below(3) {
                    0 => Component::Trim {
                        path: cp,
                        start: Some(s + d0),
                        r#in: Some(i + d0),
                        out: None,
                    },
                    1 => Component::Trim {
                        path: cp,
                        start: None,
                        r#in: None,
                        out: Some(o - d0),
                    },
                    _ => Component::Trim {
                        path: cp,
                        start: Some(s + d0),
                        r#in: Some(i + d0),
                        out: Some(o + 1.0),
                    },
                }
            }
            23 if nc > 0 => {
                let cp = track.child(r.below(nc));
                match r.below(3) {
                    0 => Component::set(cp.child("gain"), r.num()),
                    1 => Component::add(cp.child("start"), 1.0),
                    _ => Component::set(cp, clip(r, 3.0)),
                }
            }
            _ => continue,
        };
        return c;
    }
}

/// A random edit of 1–3 components, valid against `d`.
pub fn op(r: &mut Rng, d: &Value) -> Op {
    let mut scratch = d.clone();
    let mut comps = Vec::new();
    for _ in 0..1 + r.below(3) {
        let c = component(r, &scratch);
        let one = Op::new(vec![c.clone()]);
        one.apply(&mut scratch)
            .unwrap_or_else(|e| panic!("generated {one:?} is invalid: {e}"));
        comps.push(c);
    }
    Op::new(comps)
}

/// Applies or panics with the context.
pub fn apply(d: &Value, op: &Op) -> Value {
    let mut x = d.clone();
    if let Err(e) = op.apply(&mut x) {
        panic!(
            "apply failed: {e}\n op: {}\n doc: {d}",
            serde_json::to_string(op).unwrap_or_default()
        );
    }
    x
}
