//! Transformation: rewriting a component so it applies after a concurrent one, with the same
//! intent. Rules and their reasons are written out in `docs/OT.md`; this file is the code.
//!
//! Every rule is built so that TP1 holds (`a` then `T(b, a)` equals `b` then `T(a, b)`), which
//! is all a server-ordered system needs. List operations are reasoned about as "remove one
//! element, then insert at a gap of the reduced list": both sides compute the same final list,
//! so the transformed indices agree by construction.

use crate::component::{Component, join};
use crate::path::{Path, Seg};
use crate::value::Value;

/// Which of two concurrent edits the server ordered first. `Left` is the earlier one: its
/// inserts stand first at a shared index, and where two writes collide the `Right` one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn flip(self) -> Side {
        match self {
            Side::Left => Side::Right,
            Side::Right => Side::Left,
        }
    }
}

/// A component's effect on one list's indices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ListEff {
    Ins(usize),
    Del(usize),
    Mov(usize, usize),
    /// A split of the clip at this index inserts its right half just after it.
    Split(usize),
}

impl ListEff {
    /// Where the element at index `e` is after this effect; `None` if it was deleted.
    pub(crate) fn idx_after(self, e: usize) -> Option<usize> {
        match self {
            ListEff::Ins(k) => Some(e + usize::from(e >= k)),
            ListEff::Del(k) if e == k => None,
            ListEff::Del(k) => Some(e - usize::from(e > k)),
            ListEff::Mov(i, j) if e == i => Some(j),
            ListEff::Mov(i, j) => {
                let e = e - usize::from(e > i);
                Some(e + usize::from(e >= j))
            }
            ListEff::Split(i) => Some(e + usize::from(e > i)),
        }
    }
}

fn list_eff(o: &Component) -> Option<(&[Seg], ListEff)> {
    let p = o.path();
    let eff = match o {
        Component::Ins { .. } => ListEff::Ins(p.last_index()?),
        Component::Del { .. } => ListEff::Del(p.last_index()?),
        Component::Mov { to, .. } => ListEff::Mov(p.last_index()?, *to),
        Component::Split { .. } => ListEff::Split(p.last_index()?),
        _ => return None,
    };
    Some((p.parent(), eff))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Replaces the value at its target (set, crop, adjust).
    Write,
    /// Removes its target (del).
    Remove,
    /// Edits the value at its target in place (add, text, rotate, split).
    Edit,
}

/// The path a non-list component acts on, and how.
fn target(c: &Component) -> (Path, Kind) {
    match c {
        Component::Set { path, .. } => (path.clone(), Kind::Write),
        Component::Del { path } => (path.clone(), Kind::Remove),
        Component::Crop { path, .. } => (join(path.segs(), "crop"), Kind::Write),
        Component::Adjust { path, param, .. } => {
            (join(join(path.segs(), "adjust").segs(), param), Kind::Write)
        }
        Component::Rotate { path, .. } => (join(path.segs(), "rotation"), Kind::Edit),
        Component::Add { path, .. }
        | Component::Text { path, .. }
        | Component::Split { path, .. } => (path.clone(), Kind::Edit),
        // Lists and trims are handled before `target` is asked.
        Component::Ins { path, .. }
        | Component::Mov { path, .. }
        | Component::Trim { path, .. } => (path.clone(), Kind::Edit),
    }
}

/// Maps a path through a list effect on the list at `list`. `None`: the path went through an
/// element that was deleted.
fn map_path(path: &Path, list: &[Seg], eff: ListEff) -> Option<Path> {
    let n = list.len();
    if path.len() <= n || path.segs()[..n] != *list {
        return Some(path.clone());
    }
    let Seg::Index(e) = path.segs()[n] else {
        return Some(path.clone());
    };
    let e2 = eff.idx_after(e)?;
    Some(path.with_index_at(n, e2))
}

fn with_index(path: &Path, at: usize, i: usize) -> Path {
    path.with_index_at(at, i)
}

/// Transforms `c` so it applies after `o`, pushing zero or more components to `out`.
pub(crate) fn transform_component(
    c: &Component,
    o: &Component,
    side: Side,
    out: &mut Vec<Component>,
) {
    // A move to its own index changes nothing and must not order ties.
    if o.is_noop() {
        out.push(c.clone());
        return;
    }
    // Trims and splits of one clip are judged whole: the rule depends on where both edges
    // end up, which field-by-field transformation can't see.
    match (c, o) {
        (Component::Trim { path, .. }, Component::Trim { path: op, .. }) if path == op => {
            return trim_vs_trim(c, o, side, out);
        }
        (Component::Trim { path, .. }, Component::Split { path: sp, .. }) if path == sp => {
            return trim_vs_split(c, o, out);
        }
        (Component::Split { path, .. }, Component::Trim { path: tp, .. }) if path == tp => {
            return split_vs_trim(c, o, out);
        }
        _ => {}
    }
    if let Component::Trim { .. } = c {
        return transform_trim(c, o, side, out);
    }
    if let Component::Trim {
        path,
        start,
        r#in,
        out: o_out,
    } = o
    {
        // A trim is a bundle of field writes: transform against each in turn.
        let mut cur = vec![c.clone()];
        for (key, v) in [("start", start), ("in", r#in), ("out", o_out)] {
            if let Some(v) = v {
                let w = Component::Set {
                    path: join(path.segs(), key),
                    value: Value::Num(*v),
                };
                let mut next = Vec::with_capacity(cur.len());
                for x in &cur {
                    transform_component(x, &w, side, &mut next);
                }
                cur = next;
            }
        }
        out.extend(cur);
        return;
    }
    if let Component::Split { .. } = o {
        return transform_against_split(c, o, side, out);
    }

    // 1. The list structure `o` changes.
    if let Some((list, eff)) = list_eff(o) {
        if matches!(c, Component::Ins { .. } | Component::Mov { .. }) && c.path().parent() == list {
            return list_vs_list(c, eff, side, out);
        }
        if let Some(p) = map_path(c.path(), list, eff) {
            let mut c = c.clone();
            *c.path_mut() = p;
            out.push(c);
        }
        return;
    }

    // 2. Values `o` replaces or removes (list element deletes were handled above).
    if let Some(q) = replaced(o) {
        let o_remove = matches!(o, Component::Del { .. });
        if let Component::Ins { path, .. } | Component::Mov { path, .. } = c {
            if !q.is_prefix_of(path.parent()) {
                out.push(c.clone());
            }
            return;
        }
        let (t, kind) = target(c);
        if q.len() < t.len() && q.is_prefix_of(t.segs()) {
            return; // inside a subtree `o` replaced or removed
        }
        if q == t {
            let keep = match kind {
                Kind::Edit => false,
                Kind::Write => side == Side::Right,
                Kind::Remove if o_remove => false,
                // Deleting a list element beats setting it; for an object key the later wins.
                Kind::Remove => t.last_index().is_some() || side == Side::Right,
            };
            if !keep {
                return;
            }
        }
        out.push(c.clone());
        return;
    }

    // 3. In-place edits: only text meets text.
    if let (
        Component::Text { path, op },
        Component::Text {
            path: op_path,
            op: o_op,
        },
    ) = (c, o)
        && path == op_path
    {
        let t = op.transform(o_op, side == Side::Left);
        if !t.is_noop() {
            out.push(Component::Text {
                path: path.clone(),
                op: t,
            });
        }
        return;
    }
    out.push(c.clone());
}

/// The target `o` overwrites or deletes, for components that do.
fn replaced(o: &Component) -> Option<Path> {
    match o {
        Component::Set { .. } | Component::Crop { .. } | Component::Adjust { .. } => {
            Some(target(o).0)
        }
        Component::Del { path } if path.last_index().is_none() => Some(path.clone()),
        _ => None,
    }
}

/// `c` (an `ins` or `mov`) against a list effect on the same list.
fn list_vs_list(c: &Component, eff: ListEff, side: Side, out: &mut Vec<Component>) {
    let path = c.path();
    let (rc, gc) = match c {
        Component::Ins { path, .. } => (None, path.last_index().unwrap_or(0)),
        Component::Mov { path, to } => (path.last_index(), *to),
        _ => unreachable!("list_vs_list is only called for ins and mov"),
    };
    // o's removed element, insertion gap, and whether o's element goes first at a tie.
    let (ro, go, o_first) = match eff {
        ListEff::Ins(k) => (None, Some(k), side == Side::Right),
        ListEff::Del(k) => (Some(k), None, false),
        ListEff::Mov(i, j) => (Some(i), Some(j), side == Side::Right),
        // A split's right half stays glued to its left half.
        ListEff::Split(i) => (None, Some(i + 1), true),
    };
    if rc.is_some() && rc == ro {
        // Both act on one element.
        if let (ListEff::Mov(_, jo), Component::Mov { .. }) = (eff, c)
            && side == Side::Right
            && jo != gc
        {
            out.push(Component::Mov {
                path: path.with_last_index(jo),
                to: gc,
            });
        }
        return;
    }
    // Gaps are compared in the list with both removed elements taken out.
    let to_reduced = |g: usize, own: Option<usize>, other: Option<usize>| match other {
        None => g,
        Some(r) => {
            let r = match own {
                Some(x) => r - usize::from(r > x),
                None => r,
            };
            g - usize::from(g > r)
        }
    };
    let gc_r = to_reduced(gc, rc, ro);
    let pos = match go {
        None => gc_r,
        Some(go) => {
            let go_r = to_reduced(go, ro, rc);
            gc_r + usize::from(go_r < gc_r || (go_r == gc_r && o_first))
        }
    };
    match c {
        Component::Ins { value, .. } => out.push(Component::Ins {
            path: path.with_last_index(pos),
            value: value.clone(),
        }),
        Component::Mov { .. } => {
            let from = rc.and_then(|r| eff.idx_after(r)).unwrap_or(0);
            if from != pos {
                out.push(Component::Mov {
                    path: path.with_last_index(from),
                    to: pos,
                });
            }
        }
        _ => {}
    }
}

/// A trim as separate field writes, transformed, then gathered back into trims.
fn transform_trim(c: &Component, o: &Component, side: Side, out: &mut Vec<Component>) {
    let Component::Trim {
        path,
        start,
        r#in,
        out: c_out,
    } = c
    else {
        return;
    };
    let mut writes = Vec::new();
    for (key, v) in [("start", start), ("in", r#in), ("out", c_out)] {
        if let Some(v) = v {
            let w = Component::Set {
                path: join(path.segs(), key),
                value: Value::Num(*v),
            };
            transform_component(&w, o, side, &mut writes);
        }
    }
    let mut trims: Vec<Component> = Vec::new();
    for w in writes {
        let Component::Set {
            path,
            value: Value::Num(v),
        } = w
        else {
            continue;
        };
        let Some(Seg::Key(key)) = path.last() else {
            continue;
        };
        let clip = Path::from(path.parent());
        let slot = match trims.iter_mut().find(|t| *t.path() == clip) {
            Some(t) => t,
            None => {
                trims.push(Component::Trim {
                    path: clip,
                    start: None,
                    r#in: None,
                    out: None,
                });
                trims.last_mut().expect("just pushed")
            }
        };
        if let Component::Trim {
            start, r#in, out, ..
        } = slot
        {
            match key.as_str() {
                "start" => *start = Some(v),
                "in" => *r#in = Some(v),
                _ => *out = Some(v),
            }
        }
    }
    out.extend(trims);
}

/// The shortest clip (`out − in`, seconds) that two concurrent trims may leave between them.
/// A power of two, so `in + MIN_CLIP_LENGTH` is exact for the times editors produce; at least
/// one frame at 16 fps or more.
pub const MIN_CLIP_LENGTH: f64 = 0.0625;

const START: usize = 0;
const IN: usize = 1;
const OUT: usize = 2;

/// A trim's fields as `[start, in, out]`.
fn trim_fields(c: &Component) -> [Option<f64>; 3] {
    match c {
        Component::Trim {
            start, r#in, out, ..
        } => [*start, *r#in, *out],
        _ => [None; 3],
    }
}

/// Pushes a trim of `path` with `f` (`[start, in, out]`), unless it gives no field.
fn push_trim(path: &Path, f: [Option<f64>; 3], out: &mut Vec<Component>) {
    if f.iter().any(Option::is_some) {
        out.push(Component::Trim {
            path: path.clone(),
            start: f[START],
            r#in: f[IN],
            out: f[OUT],
        });
    }
}

/// The Right trim's fields after giving way to the Left one, and which of them moved.
///
/// Per field the Right trim wins. When the `in` and the `out` that win come from different
/// trims and leave less than [`MIN_CLIP_LENGTH`] between them, Right's edge moves so that
/// exactly the minimum is left: its `out` to `Left.in + MIN`, or its `in` to
/// `Left.out − MIN`. The Left edge was ordered first (the server had already applied it),
/// so the later edit, made without seeing it, yields. If Right also gives
/// `start`, it moves by as much as `in`, keeping Right's media-to-timeline mapping.
fn give_way(l: [Option<f64>; 3], r: [Option<f64>; 3]) -> ([Option<f64>; 3], [bool; 3]) {
    let mut f = r;
    let mut moved = [false; 3];
    match (l[IN], l[OUT], r[IN], r[OUT]) {
        (Some(li), _, None, Some(ro)) if ro - li < MIN_CLIP_LENGTH => {
            f[OUT] = Some(li + MIN_CLIP_LENGTH);
            moved[OUT] = true;
        }
        (_, Some(lo), Some(ri), None) if lo - ri < MIN_CLIP_LENGTH => {
            let ni = lo - MIN_CLIP_LENGTH;
            f[IN] = Some(ni);
            moved[IN] = true;
            if let Some(rs) = r[START] {
                f[START] = Some(rs + (ni - ri));
                moved[START] = true;
            }
        }
        _ => {}
    }
    (f, moved)
}

/// Two trims of one clip: the later wins per field, and the clip keeps at least
/// [`MIN_CLIP_LENGTH`] (see [`give_way`]). TP1: Right becomes its given-way fields; Left
/// keeps the fields Right doesn't give and re-writes the ones that gave way, so both orders
/// end with the same three values.
fn trim_vs_trim(c: &Component, o: &Component, side: Side, out: &mut Vec<Component>) {
    let (l, r) = match side {
        Side::Left => (trim_fields(c), trim_fields(o)),
        Side::Right => (trim_fields(o), trim_fields(c)),
    };
    let (fixed, moved) = give_way(l, r);
    let f = match side {
        Side::Right => fixed,
        Side::Left => [START, IN, OUT].map(|k| match r[k] {
            Some(_) if moved[k] => fixed[k],
            Some(_) => None,
            None => l[k],
        }),
    };
    push_trim(c.path(), f, out);
}

/// A trim after a split of the same clip: it lands on the half it meant.
/// - `out` at or before the cut (`out ≤ media`): everything after the cut is trimmed away.
///   The whole trim goes to the left half and the right half is deleted.
/// - Otherwise `in` at or past the cut (`in ≥ media`): the left half is trimmed away. The
///   whole trim goes to the right half and the left half is deleted.
/// - Otherwise `start`/`in` go to the left half and `out` to the right half.
///
/// The first two never leave a half with `out < in` that the trim's author didn't ask for;
/// [`split_vs_trim`] is the other order.
fn trim_vs_split(c: &Component, o: &Component, out: &mut Vec<Component>) {
    let (Component::Trim { path, .. }, Component::Split { media, .. }) = (c, o) else {
        return;
    };
    let Some(i) = path.last_index() else {
        return;
    };
    let f = trim_fields(c);
    let right = path.with_last_index(i + 1);
    if f[OUT].is_some_and(|x| x <= *media) {
        push_trim(path, f, out);
        out.push(Component::Del { path: right });
    } else if f[IN].is_some_and(|x| x >= *media) {
        push_trim(&right, f, out);
        out.push(Component::Del { path: path.clone() });
    } else {
        push_trim(path, [f[START], f[IN], None], out);
        push_trim(&right, [None, None, f[OUT]], out);
    }
}

/// A split after a trim of the same clip (the mirror of [`trim_vs_split`]).
/// - The trim ended the clip at or before the cut: there is nothing left to cut; dropped.
/// - The trim moved the head to or past the cut: what is left is the split's right half, so
///   the split becomes the writes that make the clip that half: its `id`, and its `start`
///   when the trim didn't give one. (The edits alone hold neither the left half's `id` nor
///   the right half's `out`, so the right half is the only survivor both orders can build.)
/// - Otherwise unchanged: the cut is absolute.
fn split_vs_trim(c: &Component, o: &Component, out: &mut Vec<Component>) {
    let Component::Split {
        path,
        at,
        media,
        id,
    } = c
    else {
        return;
    };
    let f = trim_fields(o);
    if f[OUT].is_some_and(|x| x <= *media) {
        return;
    }
    if f[IN].is_some_and(|x| x >= *media) {
        out.push(Component::Set {
            path: join(path.segs(), "id"),
            value: Value::str(id.as_str()),
        });
        if f[START].is_none() {
            out.push(Component::Set {
                path: join(path.segs(), "start"),
                value: Value::Num(*at),
            });
        }
        return;
    }
    out.push(c.clone());
}

/// `c` after a split of the clip at `o`'s path. The clip's head (`start`, `in`, `id`) stays
/// with the left half at the same index, its tail (`out`) goes to the right half, and
/// everything else about the clip is now true of both halves.
fn transform_against_split(c: &Component, o: &Component, side: Side, out: &mut Vec<Component>) {
    let Component::Split {
        path: sp, at: o_at, ..
    } = o
    else {
        return;
    };
    let list = sp.parent();
    let Some(i) = sp.last_index() else {
        out.push(c.clone());
        return;
    };
    let n = list.len();
    let cp = c.path();

    if let Component::Split {
        path,
        at,
        media,
        id,
    } = c
        && path == sp
    {
        if at < o_at {
            out.push(c.clone());
        } else if at > o_at {
            out.push(Component::Split {
                path: path.with_last_index(i + 1),
                at: *at,
                media: *media,
                id: id.clone(),
            });
        } else if side == Side::Left {
            // The same cut twice: the earlier one's halves stand.
            let right = path.with_last_index(i + 1);
            out.push(Component::Set {
                path: join(path.segs(), "out"),
                value: Value::Num(*media),
            });
            out.push(Component::Set {
                path: join(right.segs(), "id"),
                value: Value::str(id.as_str()),
            });
            out.push(Component::Set {
                path: join(right.segs(), "start"),
                value: Value::Num(*at),
            });
            out.push(Component::Set {
                path: join(right.segs(), "in"),
                value: Value::Num(*media),
            });
        }
        return;
    }

    if matches!(c, Component::Ins { .. } | Component::Mov { .. }) && cp.parent() == list {
        if let Component::Mov { to, .. } = c
            && cp.last_index() == Some(i)
        {
            // Moving the clip moves both halves, keeping them together.
            let j = *to;
            let left = cp.clone();
            let right = cp.with_last_index(i + 1);
            if j > i {
                out.push(Component::Mov {
                    path: right,
                    to: j + 1,
                });
                out.push(Component::Mov { path: left, to: j });
            } else if j < i {
                out.push(Component::Mov { path: left, to: j });
                out.push(Component::Mov {
                    path: right,
                    to: j + 1,
                });
            }
            return;
        }
        return list_vs_list(c, ListEff::Split(i), side, out);
    }

    if cp.len() <= n || cp.segs()[..n] != *list {
        out.push(c.clone());
        return;
    }
    let Seg::Index(e) = cp.segs()[n] else {
        out.push(c.clone());
        return;
    };
    if e != i {
        let mut c = c.clone();
        *c.path_mut() = with_index(cp, n, e + usize::from(e > i));
        out.push(c);
        return;
    }
    let right_of = |c: &Component| {
        let mut c = c.clone();
        let p = with_index(c.path(), n, i + 1);
        *c.path_mut() = p;
        c
    };
    if cp.len() == n + 1 {
        // `c` acts on the clip itself.
        match c {
            Component::Del { .. } => {
                out.push(Component::Del {
                    path: cp.with_last_index(i + 1),
                });
                out.push(c.clone());
            }
            Component::Set { .. } => {
                out.push(Component::Del {
                    path: cp.with_last_index(i + 1),
                });
                out.push(c.clone());
            }
            // (A trim never gets here: it is divided into field writes first.)
            // Crop, rotate, adjust, add, text on the clip value: true of both halves.
            _ => {
                out.push(c.clone());
                out.push(right_of(c));
            }
        }
        return;
    }
    match cp.segs()[n + 1].key() {
        Some("start" | "in" | "id") => out.push(c.clone()),
        Some("out") => out.push(right_of(c)),
        _ => {
            out.push(c.clone());
            out.push(right_of(c));
        }
    }
}

/// Transforms component lists: returns (`a` after `b`, `b` after `a`). `side` is `a`'s.
pub(crate) fn transform_x(
    a: &[Component],
    b: &[Component],
    side: Side,
) -> (Vec<Component>, Vec<Component>) {
    // No-ops (a move to its own index) must not take part: they would order ties.
    let mut b_cur: Vec<Component> = b.iter().filter(|c| !c.is_noop()).cloned().collect();
    let mut a_out = Vec::with_capacity(a.len());
    for ac in a.iter().filter(|c| !c.is_noop()) {
        let mut a_cur = vec![ac.clone()];
        let mut b_next = Vec::with_capacity(b_cur.len());
        for bc in &b_cur {
            if a_cur.len() == 1 {
                let mut a2 = Vec::with_capacity(1);
                transform_component(&a_cur[0], bc, side, &mut a2);
                transform_component(bc, &a_cur[0], side.flip(), &mut b_next);
                a_cur = a2;
            } else {
                // Rare: a component became several; they are few, so this recursion is shallow.
                let (a2, mut b2) = transform_x(&a_cur, std::slice::from_ref(bc), side);
                a_cur = a2;
                b_next.append(&mut b2);
            }
        }
        a_out.append(&mut a_cur);
        b_cur = b_next;
    }
    (a_out, b_cur)
}
