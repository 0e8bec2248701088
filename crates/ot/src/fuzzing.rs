//! Structured fuzz actions (feature `arbitrary`), shared by the cargo-fuzz targets in `fuzz/`
//! and the seeded replay tests in `tests/it/actions.rs`, so a crash found by either replays in
//! the other.
//!
//! An action names *what* to do in terms of the document's shape ("delete clip 3 of track 1");
//! [`Action::component`] resolves it against the current document (indices taken modulo the
//! list's length), so most generated edits are valid and reach deep into `apply` and
//! `transform` instead of stopping at the first bounds check. [`Action::Raw`] is the exception:
//! any decodable component, with huge indices, unknown keys and wrong types.
//!
//! Each `check_*` function builds its inputs from an [`Unstructured`] and panics when a law of
//! `docs/OT.md` fails. It returns whether the law was checked: an input it can't use (too short,
//! no edit that applies) returns `Ok(false)` or an error, and is simply uninteresting.

use arbitrary::{Arbitrary, Unstructured};

use crate::{Component, MAX_PATH_DEPTH, Op, Path, Rect, Seg, Side, Value};

/// Deepest value an action builds: a frame nests its edit's values inside `{"ops":[{"value":…}]}`,
/// and the JSON parser refuses more than 128 levels, so this is what a client can send.
pub const MAX_VALUE_DEPTH: usize = 124;
/// Edits in one history (rebase) or one apply sequence.
const MAX_STEPS: usize = 8;
/// Components per generated edit.
const MAX_COMPONENTS: usize = 4;

/// A number whose sums are exact in any order (quarters), so the laws hold bit for bit (§8).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Num(pub i8);

impl Num {
    pub fn get(self) -> f64 {
        f64::from(self.0) / 4.0
    }
}

/// A short string over an alphabet with multi-byte characters.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Word(pub [u8; 4]);

impl Word {
    pub fn get(self) -> String {
        const ALPHABET: &[&str] = &["a", "b", "x", "é", "漢", "🎬", " ", "\u{301}"];
        let n = 1 + usize::from(self.0[0] % 4);
        self.0[..n]
            .iter()
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()])
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct LayerSpec {
    pub text: bool,
    pub x: Num,
    pub y: Num,
    pub id: u8,
    pub rotated: bool,
    pub word: Word,
}

impl LayerSpec {
    pub fn value(self) -> Value {
        let mut l = Value::obj([
            ("id", Value::str(format!("l{}", self.id))),
            ("x", Value::Num(self.x.get())),
            ("y", Value::Num(self.y.get())),
        ]);
        if let Value::Obj(m) = &mut l {
            if self.text {
                m.insert("kind".into(), Value::str("text"));
                m.insert("text".into(), Value::str(self.word.get()));
                m.insert("size".into(), Value::Num(12.0));
                m.insert("color".into(), Value::str("#fff"));
            } else {
                m.insert("kind".into(), Value::str("image"));
                m.insert("asset".into(), Value::str("a1"));
                m.insert("w".into(), Value::Num(100.0));
                m.insert("h".into(), Value::Num(50.0));
                if self.rotated {
                    m.insert("rotation".into(), Value::Num(90.0));
                    m.insert(
                        "adjust".into(),
                        Value::obj([("brightness", Value::Num(0.25))]),
                    );
                }
            }
        }
        l
    }
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct ClipSpec {
    pub start: u8,
    pub r#in: u8,
    pub len: u8,
    pub id: u8,
}

impl ClipSpec {
    pub fn value(self) -> Value {
        let inp = f64::from(self.r#in % 8);
        Value::obj([
            ("id", Value::str(format!("c{}", self.id))),
            ("asset", Value::str("v1")),
            ("start", Value::Num(f64::from(self.start % 64))),
            ("in", Value::Num(inp)),
            ("out", Value::Num(inp + 1.0 + f64::from(self.len % 8))),
            ("gain", Value::Num(1.0)),
        ])
    }
}

/// The starting document: a few layers, two tracks of clips, free-form `meta` with a list.
#[derive(Debug, Clone, Arbitrary)]
pub struct DocSpec {
    pub title: Word,
    pub note: Word,
    pub layers: Vec<LayerSpec>,
    pub clips: [Vec<ClipSpec>; 2],
    pub list: Vec<Num>,
}

impl DocSpec {
    pub fn value(&self) -> Value {
        let mut d = Value::new_document();
        let Value::Obj(root) = &mut d else {
            return d;
        };
        root.insert("title".into(), Value::str(self.title.get()));
        let layers = self.layers.iter().take(4).map(|l| l.value()).collect();
        if let Some(Value::Obj(c)) = root.get_mut("canvas") {
            c.insert("layers".into(), Value::Arr(layers));
        }
        let tracks = self
            .clips
            .iter()
            .enumerate()
            .map(|(t, clips)| {
                Value::obj([
                    ("id", Value::str(format!("t{t}"))),
                    ("kind", Value::str("video")),
                    (
                        "clips",
                        Value::Arr(clips.iter().take(4).map(|c| c.value()).collect()),
                    ),
                ])
            })
            .collect();
        if let Some(Value::Obj(t)) = root.get_mut("timeline") {
            t.insert("tracks".into(), Value::Arr(tracks));
        }
        let list = self
            .list
            .iter()
            .take(6)
            .map(|n| Value::Num(n.get()))
            .collect();
        root.insert(
            "meta".into(),
            Value::obj([
                ("list", Value::Arr(list)),
                ("n", Value::Num(1.0)),
                ("note", Value::str(self.note.get())),
            ]),
        );
        d
    }
}

/// What to do to one layer.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum LayerEdit {
    AddX(Num),
    SetY(Num),
    Replace(LayerSpec),
    Type { pos: u16, word: Word },
    Crop { x: u8, y: u8, w: u8, h: u8 },
    Rotate(u8),
    Adjust { param: u8, eighths: i8 },
    DelAdjust,
    Opacity,
}

/// What to do to one clip.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ClipEdit {
    Split { eighths: u8, id: u8 },
    Trim { fields: u8, d: u8 },
    Gain(Num),
    NudgeStart,
    Replace(ClipSpec),
}

/// A component that needs no document: any path, any op, huge indices. Built as JSON and
/// decoded, so it is exactly what a client could send.
#[derive(Debug, Clone, Arbitrary)]
pub struct RawComponent {
    pub op: u8,
    pub path: Vec<RawSeg>,
    pub fields: Vec<(u8, RawNum)>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum RawSeg {
    Key(u8),
    Index(u8),
    Huge(u32),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum RawNum {
    Small(Num),
    Huge(u32),
    Big,
    Word(Word),
}

/// One component, described against the document's shape.
#[derive(Debug, Clone, Arbitrary)]
pub enum Action {
    TitleText {
        pos: u16,
        del: u8,
        word: Word,
    },
    NoteText {
        pos: u16,
        word: Word,
    },
    MetaSet {
        key: bool,
        n: Num,
    },
    MetaDel,
    MetaAdd(Num),
    ListIns {
        at: u16,
        n: Num,
    },
    ListDel {
        at: u16,
    },
    ListMov {
        from: u16,
        to: u16,
    },
    ListSet {
        at: u16,
        n: Num,
    },
    LayerIns {
        at: u16,
        layer: LayerSpec,
    },
    LayerDel {
        at: u16,
    },
    LayerMov {
        from: u16,
        to: u16,
    },
    Layer {
        at: u16,
        edit: LayerEdit,
    },
    ClipIns {
        track: bool,
        at: u16,
        clip: ClipSpec,
    },
    ClipDel {
        track: bool,
        at: u16,
    },
    ClipMov {
        track: bool,
        from: u16,
        to: u16,
    },
    Clip {
        track: bool,
        at: u16,
        edit: ClipEdit,
    },
    /// Replaces `meta.deep` with a chain of `{"d": …}` this many levels deep (up to
    /// [`MAX_VALUE_DEPTH`]).
    Deep {
        levels: u8,
    },
    /// Sets `d` at the end of an existing `meta.deep.d.d…` chain (at most [`MAX_PATH_DEPTH`]
    /// segments) to a chain `levels` deep: together they build the deepest documents the wire
    /// allows (issue #15: ~190 levels).
    DeepSet {
        at: u8,
        levels: u8,
    },
    Raw(RawComponent),
}

/// The length of the list at `p` (0 if there is none).
pub fn len_at(d: &Value, p: &Path) -> usize {
    d.at(p.segs()).and_then(Value::as_arr).map_or(0, Vec::len)
}

/// The length in characters of the text at `p` (0 if there is none).
pub fn text_len(d: &Value, p: &Path) -> usize {
    d.at(p.segs())
        .and_then(Value::as_text)
        .map_or(0, |t| t.len_chars())
}

/// Every file of the repository's `fuzz/corpus/<target>`, sorted, with its bytes: what the
/// replay tests run (there must be some).
pub fn corpus(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("a corpus file");
            (p, data)
        })
        .collect()
}

/// `i` modulo `n`, for `n > 0`.
fn pick(i: u16, n: usize) -> usize {
    usize::from(i) % n
}

/// `{"d":{"d":…{}}}`, `levels` objects deep, built without recursion.
pub fn chain(levels: usize) -> Value {
    let mut v = Value::obj::<&str>([]);
    for _ in 1..levels.min(MAX_VALUE_DEPTH) {
        v = Value::obj([("d", v)]);
    }
    v
}

fn track(t: bool) -> Path {
    crate::path!["timeline", "tracks", usize::from(t), "clips"]
}

impl Action {
    /// The component this action means against `d`, or `None` when it means nothing there
    /// (an element of an empty list, a raw component that doesn't decode).
    pub fn component(&self, d: &Value) -> Option<Component> {
        let layers = crate::path!["canvas", "layers"];
        let list = crate::path!["meta", "list"];
        let nl = len_at(d, &layers);
        let nlist = len_at(d, &list);
        Some(match *self {
            Action::TitleText { pos, del, word } => {
                let p = crate::path!["title"];
                let len = text_len(d, &p);
                if len > 0 && del % 3 != 0 {
                    let at = pick(pos, len);
                    let n = 1 + usize::from(del) % (len - at).min(3);
                    Component::text_delete(p, at, n)
                } else {
                    Component::text_insert(p, pick(pos, len + 1), word.get())
                }
            }
            Action::NoteText { pos, word } => {
                let p = crate::path!["meta", "note"];
                let at = pick(pos, text_len(d, &p) + 1);
                Component::text_insert(p, at, word.get())
            }
            Action::MetaSet { key, n } => {
                Component::set(crate::path!["meta", if key { "n" } else { "k" }], n.get())
            }
            Action::MetaDel => {
                let p = crate::path!["meta", "k"];
                d.at(p.segs())?;
                Component::del(p)
            }
            Action::MetaAdd(n) => Component::add(crate::path!["meta", "n"], n.get()),
            Action::ListIns { at, n } => Component::ins(list.child(pick(at, nlist + 1)), n.get()),
            Action::ListDel { at } if nlist > 0 => Component::del(list.child(pick(at, nlist))),
            Action::ListMov { from, to } if nlist > 0 => {
                Component::mov(list.child(pick(from, nlist)), pick(to, nlist))
            }
            Action::ListSet { at, n } if nlist > 0 => {
                Component::set(list.child(pick(at, nlist)), n.get())
            }
            Action::LayerIns { at, layer } => {
                Component::ins(layers.child(pick(at, nl + 1)), layer.value())
            }
            Action::LayerDel { at } if nl > 0 => Component::del(layers.child(pick(at, nl))),
            Action::LayerMov { from, to } if nl > 0 => {
                Component::mov(layers.child(pick(from, nl)), pick(to, nl))
            }
            Action::Layer { at, edit } if nl > 0 => {
                layer_edit(d, layers.child(pick(at, nl)), edit)?
            }
            Action::ClipIns { track: t, at, clip } => {
                let p = track(t);
                Component::ins(p.child(pick(at, len_at(d, &p) + 1)), clip.value())
            }
            Action::ClipDel { track: t, at } => {
                let p = track(t);
                let n = len_at(d, &p);
                if n == 0 {
                    return None;
                }
                Component::del(p.child(pick(at, n)))
            }
            Action::ClipMov { track: t, from, to } => {
                let p = track(t);
                let n = len_at(d, &p);
                if n == 0 {
                    return None;
                }
                Component::mov(p.child(pick(from, n)), pick(to, n))
            }
            Action::Clip { track: t, at, edit } => {
                let p = track(t);
                let n = len_at(d, &p);
                if n == 0 {
                    return None;
                }
                clip_edit(d, p.child(pick(at, n)), edit)?
            }
            Action::Deep { levels } => {
                Component::set(crate::path!["meta", "deep"], chain(usize::from(levels)))
            }
            Action::DeepSet { at, levels } => {
                let mut segs = vec![Seg::from("meta"), Seg::from("deep")];
                while segs.len() < (MAX_PATH_DEPTH - 1).min(2 + usize::from(at))
                    && d.at(&segs).and_then(|v| v.get("d")).is_some()
                {
                    segs.push(Seg::from("d"));
                }
                if segs.len() >= MAX_PATH_DEPTH || d.at(&segs)?.as_obj().is_none() {
                    return None;
                }
                segs.push(Seg::from("d"));
                // A value as deep as the frame allows after a path this long.
                Component::set(Path::from(segs), chain(usize::from(levels)))
            }
            Action::Raw(ref raw) => return raw.component(),
            _ => return None,
        })
    }
}

fn field(d: &Value, p: &Path, k: &str) -> f64 {
    d.at(p.child(k).segs())
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

fn layer_edit(d: &Value, lp: Path, edit: LayerEdit) -> Option<Component> {
    let is_image = d
        .at(lp.child("kind").segs())
        .and_then(Value::as_text)
        .is_some_and(|t| *t == *"image");
    Some(match edit {
        LayerEdit::AddX(n) => Component::add(lp.child("x"), n.get()),
        LayerEdit::SetY(n) => Component::set(lp.child("y"), n.get()),
        LayerEdit::Replace(l) => Component::set(lp, l.value()),
        LayerEdit::Type { pos, word } if !is_image => {
            let tp = lp.child("text");
            let at = pick(pos, text_len(d, &tp) + 1);
            Component::text_insert(tp, at, word.get())
        }
        LayerEdit::Crop { x, y, w, h } if is_image => Component::Crop {
            path: lp,
            rect: Rect {
                x: f64::from(x % 10),
                y: f64::from(y % 10),
                w: 1.0 + f64::from(w % 50),
                h: 1.0 + f64::from(h % 50),
            },
        },
        LayerEdit::Rotate(q) if is_image => Component::Rotate {
            path: lp,
            by: 90.0 * f64::from(1 + q % 3),
        },
        LayerEdit::Adjust { param, eighths } if is_image => Component::Adjust {
            path: lp,
            param: ["brightness", "contrast", "saturation", "exposure"][usize::from(param % 4)]
                .into(),
            value: f64::from(eighths.clamp(-8, 8)) / 8.0,
        },
        LayerEdit::DelAdjust if is_image => {
            let p = lp.child("adjust");
            d.at(p.segs())?;
            Component::del(p)
        }
        LayerEdit::Opacity if is_image => Component::set(lp.child("opacity"), 0.5),
        _ => return None,
    })
}

fn clip_edit(d: &Value, cp: Path, edit: ClipEdit) -> Option<Component> {
    let (start, inp, out) = (
        field(d, &cp, "start"),
        field(d, &cp, "in"),
        field(d, &cp, "out"),
    );
    Some(match edit {
        ClipEdit::Split { eighths, id } => {
            let at = start + f64::from(1 + eighths % 7) * (out - inp) / 8.0;
            Component::Split {
                path: cp,
                at,
                media: inp + (at - start),
                id: format!("s{id}"),
            }
        }
        ClipEdit::Trim { fields, d } => {
            let d = f64::from(d % 4) * 0.5;
            let f = fields % 7 + 1;
            Component::Trim {
                path: cp,
                start: (f & 1 != 0).then_some(start + d),
                r#in: (f & 2 != 0).then_some(inp + d),
                out: (f & 4 != 0).then_some(out + 1.0 - d),
            }
        }
        ClipEdit::Gain(n) => Component::set(cp.child("gain"), n.get()),
        ClipEdit::NudgeStart => Component::add(cp.child("start"), 1.0),
        ClipEdit::Replace(c) => Component::set(cp, c.value()),
    })
}

impl RawComponent {
    /// The component as a client would send it, if it decodes.
    pub fn component(&self) -> Option<Component> {
        use serde_json::{Value as J, json};
        const OPS: &[&str] = &[
            "set", "del", "ins", "mov", "add", "text", "split", "trim", "crop", "rotate", "adjust",
        ];
        const KEYS: &[&str] = &[
            "title", "canvas", "layers", "timeline", "tracks", "clips", "meta", "list", "x",
            "adjust", "crop", "rotation", "start", "out", "n", "deep", "d",
        ];
        const FIELDS: &[&str] = &[
            "value", "to", "pos", "ins", "del", "at", "media", "id", "start", "in", "out", "rect",
            "by", "param",
        ];
        let path: Vec<J> = self
            .path
            .iter()
            .take(MAX_PATH_DEPTH)
            .map(|s| match *s {
                RawSeg::Key(k) => json!(KEYS[usize::from(k) % KEYS.len()]),
                RawSeg::Index(i) => json!(i % 8),
                RawSeg::Huge(i) => json!(i),
            })
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("op".into(), json!(OPS[usize::from(self.op) % OPS.len()]));
        m.insert("path".into(), J::Array(path));
        for (f, n) in self.fields.iter().take(6) {
            let f = FIELDS[usize::from(*f) % FIELDS.len()];
            let v = match (f, *n) {
                ("rect", n) => json!({"x": 0, "y": 0, "w": n.json(), "h": 1}),
                ("param", RawNum::Word(w)) => json!(w.get()),
                ("param", _) => json!("contrast"),
                (_, n) => n.json(),
            };
            m.insert(f.into(), v);
        }
        let op = Op::from_json(&J::Array(vec![J::Object(m)])).ok()?;
        op.0.into_iter().next()
    }
}

impl RawNum {
    fn json(self) -> serde_json::Value {
        match self {
            RawNum::Small(n) => serde_json::json!(n.get()),
            // Up to MAX_INDEX, and still exact when added to quarters.
            RawNum::Huge(n) => serde_json::json!(n),
            RawNum::Big => serde_json::json!(1u64 << 40),
            RawNum::Word(w) => serde_json::json!(w.get()),
        }
    }
}

/// An edit of 1–4 components, each resolved against the document the previous ones left.
/// Components that mean nothing there or don't apply are left out; `None` if none is left.
pub fn edit(u: &mut Unstructured, d: &Value, raw: bool) -> arbitrary::Result<Option<Op>> {
    let mut scratch = d.clone();
    let mut out = Vec::new();
    for _ in 0..u.int_in_range(1..=MAX_COMPONENTS)? {
        let a = Action::arbitrary(u)?;
        if !raw && matches!(a, Action::Raw(_)) {
            continue;
        }
        let Some(c) = a.component(&scratch) else {
            continue;
        };
        let one = Op::new(vec![c.clone()]);
        if one.apply(&mut scratch).is_ok() {
            out.push(c);
        }
    }
    Ok((!out.is_empty()).then(|| Op::new(out)))
}

fn applied(d: &Value, op: &Op, what: &str) -> Value {
    let mut x = d.clone();
    if let Err(e) = op.apply(&mut x) {
        panic!(
            "{what} does not apply: {e}\n op: {}\n doc: {d}",
            op.to_json()
        );
    }
    x
}

/// The document serializes and reads back equal. Through `serde_json::Value`, which has no
/// nesting limit: the text parser's 128-level default is the reader's business (issue #15).
fn check_round_trip(d: &Value) {
    let back = serde_json::to_value(d).and_then(serde_json::from_value::<Value>);
    match back {
        Ok(back) => assert_eq!(&back, d, "document JSON round trip"),
        Err(e) => panic!("a document did not round-trip through JSON: {e}"),
    }
}

/// `apply`: a refused edit changes nothing; an applied one is undone exactly by its inverse and
/// applies the same after its JSON round trip; documents round-trip through JSON. Edits include
/// raw components (huge indices, wrong types, unknown paths) and the deepest values the wire allows.
pub fn check_apply(u: &mut Unstructured) -> arbitrary::Result<bool> {
    let mut d = DocSpec::arbitrary(u)?.value();
    let mut checked = false;
    for _ in 0..MAX_STEPS {
        let mut comps = Vec::new();
        for _ in 0..u.int_in_range(1..=MAX_COMPONENTS)? {
            if let Some(c) = Action::arbitrary(u)?.component(&d) {
                comps.push(c);
            }
        }
        if comps.is_empty() {
            continue;
        }
        let op = Op::new(comps);
        let before = d.clone();
        match op.apply(&mut d) {
            Err(_) => assert_eq!(d, before, "a refused edit changed the document"),
            Ok(inverse) => {
                checked = true;
                assert_eq!(
                    applied(&d, &inverse, "the inverse"),
                    before,
                    "the inverse restores\n op: {}",
                    op.to_json()
                );
                let wire = Op::from_json(&op.to_json())
                    .unwrap_or_else(|e| panic!("an applied edit re-decodes: {e}"));
                assert_eq!(applied(&before, &wire, "the re-decoded edit"), d);
            }
        }
    }
    check_round_trip(&d);
    Ok(checked)
}

/// `transform` pairs: TP1 (docs/OT.md §1) for two valid concurrent edits, `transform` agreeing
/// with `transform_x`; and a raw edit transforms against a valid one, both ways, without panic.
pub fn check_transform(u: &mut Unstructured) -> arbitrary::Result<bool> {
    let d = DocSpec::arbitrary(u)?.value();
    // Build up a history first, so documents are deep and varied.
    let mut d = d;
    for _ in 0..u.int_in_range(0..=3)? {
        if let Some(op) = edit(u, &d, false)? {
            d = applied(&d, &op, "a generated edit");
        }
    }
    let (Some(a), Some(b)) = (edit(u, &d, false)?, edit(u, &d, false)?) else {
        return Ok(false);
    };
    let (a2, b2) = a.transform_x(&b, Side::Left);
    assert_eq!(a2, a.transform(&b, Side::Left), "transform_x agrees (a)");
    assert_eq!(b2, b.transform(&a, Side::Right), "transform_x agrees (b)");
    let via_a = applied(&applied(&d, &a, "a"), &b2, "b transformed past a");
    let via_b = applied(&applied(&d, &b, "b"), &a2, "a transformed past b");
    assert_eq!(
        via_a,
        via_b,
        "TP1\n a: {}\n b: {}\n a': {}\n b': {}",
        a.to_json(),
        b.to_json(),
        a2.to_json(),
        b2.to_json()
    );
    if let Some(c) = edit(u, &d, true)? {
        for side in [Side::Left, Side::Right] {
            let (c2, a3) = c.transform_x(&a, side);
            let _ = (c2.apply(&mut via_a.clone()), a3.apply(&mut d.clone()));
        }
    }
    Ok(true)
}

/// Rebase: an edit made at base `d` is transformed past a run of later edits, one version at a
/// time with `Side::Right` (as the server does); the client, which applied the edit first,
/// receives the run and transforms each against its in-flight edit with `transform_x(…,
/// Side::Left)`. The rebased edit applies, and both end with the same document.
pub fn check_rebase(u: &mut Unstructured) -> arbitrary::Result<bool> {
    let base = DocSpec::arbitrary(u)?.value();
    let Some(mut mine) = edit(u, &base, false)? else {
        return Ok(false);
    };
    let mut server = base.clone();
    let mut history = Vec::new();
    for _ in 0..u.int_in_range(1..=MAX_STEPS)? {
        if let Some(h) = edit(u, &server, false)? {
            server = applied(&server, &h, "a history edit");
            history.push(h);
        }
    }
    let rebased = history
        .iter()
        .fold(mine.clone(), |op, h| op.transform(h, Side::Right));
    let server = applied(&server, &rebased, "the rebased edit");

    let mut client = applied(&base, &mine, "the client's edit");
    for h in &history {
        let (h2, mine2) = h.transform_x(&mine, Side::Left);
        client = applied(&client, &h2, "a history edit past the client's");
        mine = mine2;
    }
    assert_eq!(
        server,
        client,
        "server and client converge\n edit: {}\n rebased: {}",
        mine.to_json(),
        rebased.to_json()
    );
    Ok(!history.is_empty())
}
