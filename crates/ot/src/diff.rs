//! `diff`: one edit that turns one document into another, touching only what differs. Restoring
//! a version commits such an edit like any other, so it must be as fine-grained as a hand-made
//! one: then a concurrent edit elsewhere in the document survives its transformation.
//!
//! The rules, by the kind of value on both sides:
//! - objects: `del` the keys `to` lacks, `set` the keys `from` lacks, recurse into the rest;
//! - lists whose elements are all objects with a string `id`, unique within the list (layers,
//!   tracks, clips): elements are matched by id. `del` the gone ones (last first), `mov` the
//!   fewest (all but a longest run already in order), `ins` the new ones in target order, then
//!   recurse into the common ones at their final indices;
//! - other lists: the common prefix and suffix stay; the middles are paired index by index
//!   (recursing), and what one middle has beyond the other is `del`eted or `ins`erted;
//! - strings: one `text` op that keeps the common prefix and suffix (in Unicode scalar values,
//!   as `TextOp` counts) and replaces the middle;
//! - anything else that differs (numbers, booleans, null, a change of type): `set`. Numbers are
//!   `set`, not `add`ed: a restore means "make it this value", even past a concurrent `add`;
//! - containers at [`crate::MAX_PATH_DEPTH`] are `set` whole, so every path stays decodable.
//!
//! Components apply in sequence, each to what the previous one left, so later indices are
//! written for the list as the earlier components leave it. The edit's result is `to` exactly,
//! so it passes `Op::apply`'s shape check whenever `to` is a valid document; for free-form JSON
//! use `Op::apply_unchecked`. Work is linear in the documents' size, except moves in an id list
//! (O(list length) each). A diff of wholly different large documents can exceed
//! [`crate::MAX_COMPONENTS`], the limit on an edit decoded from a client.

use std::collections::{BTreeMap, HashMap};

use crate::component::Component;
use crate::error::{OtError, Result};
use crate::op::Op;
use crate::path::{Path, Seg};
use crate::text::{TextOp, TextPart};
use crate::value::{Text, Value};

/// The edit that, applied to `from`, yields exactly `to`. Equal values give the empty edit.
pub fn diff(from: &Value, to: &Value) -> Op {
    diff_under(&Path::root(), from, to)
}

/// [`diff`] of two subtrees, with every component's path under `at`, where `from` sits in the
/// document the edit is for. For restoring one layer or clip: its index may differ between
/// versions, so the caller finds it by id in each and passes the head's path here.
pub fn diff_under(at: &Path, from: &Value, to: &Value) -> Op {
    let mut out = Vec::new();
    value(at, from, to, &mut out);
    Op::new(out)
}

/// The edit that makes the value at `path` in `from` what it is in `to`, leaving the rest of
/// `from` alone: a diff below `path` where both have it, else one `del`, `set` (object key) or
/// `ins` (list index). `path` is read as written in both documents, which suits object keys
/// (the title, an asset); for list elements see [`diff_under`]. Errors if `from` has no place
/// for the value: no parent, a parent of the wrong type, an index past the list's end.
pub fn diff_at(from: &Value, to: &Value, path: &Path) -> Result<Op> {
    let c = match (from.at(path.segs()), to.at(path.segs())) {
        (Some(a), Some(b)) => return Ok(diff_under(path, a, b)),
        (None, None) => return Ok(Op::default()),
        (Some(_), None) => Component::del(path.clone()),
        (None, Some(b)) => {
            let parent = Path::from(path.parent());
            let p = from.at(parent.segs()).ok_or_else(|| OtError::NoSuchPath {
                path: parent.clone(),
            })?;
            match (p, path.last()) {
                (Value::Obj(_), Some(Seg::Key(_))) => Component::set(path.clone(), b.clone()),
                (Value::Arr(a), Some(Seg::Index(i))) if *i <= a.len() => {
                    Component::ins(path.clone(), b.clone())
                }
                (Value::Arr(a), Some(Seg::Index(i))) => {
                    return Err(OtError::OutOfBounds {
                        path: parent,
                        index: *i,
                        len: a.len(),
                    });
                }
                // The root is in every document, so `path` has a last segment here.
                (p, last) => {
                    return Err(OtError::WrongType {
                        path: parent,
                        expected: if matches!(last, Some(Seg::Index(_))) {
                            "array"
                        } else {
                            "object"
                        },
                        found: p.type_name(),
                    });
                }
            }
        }
    };
    Ok(Op::new(vec![c]))
}

fn value(at: &Path, from: &Value, to: &Value, out: &mut Vec<Component>) {
    // A child's path would be too long to decode (`MAX_PATH_DEPTH`): replace the whole value.
    let deep = at.len() >= crate::MAX_PATH_DEPTH;
    match (from, to) {
        (Value::Obj(a), Value::Obj(b)) if !deep => object(at, a, b, out),
        (Value::Arr(a), Value::Arr(b)) if !deep => match (ids(a), ids(b)) {
            (Some(ia), Some(ib)) => by_id(at, a, b, &ia, &ib, out),
            _ => by_index(at, a, b, out),
        },
        (Value::Str(a), Value::Str(b)) => text(at, a, b, out),
        _ if from == to => {}
        _ => out.push(Component::set(at.clone(), to.clone())),
    }
}

fn object(
    at: &Path,
    a: &BTreeMap<String, Value>,
    b: &BTreeMap<String, Value>,
    out: &mut Vec<Component>,
) {
    for (k, v) in a {
        match b.get(k) {
            Some(w) => value(&at.child(k.as_str()), v, w, out),
            None => out.push(Component::del(at.child(k.as_str()))),
        }
    }
    for (k, w) in b {
        if !a.contains_key(k) {
            out.push(Component::set(at.child(k.as_str()), w.clone()));
        }
    }
}

/// Each element's id, if every element is an object with a string `id` and no id repeats
/// (else elements can't be told apart by id, and the list is diffed by index).
fn ids(list: &[Value]) -> Option<Vec<String>> {
    let ids: Vec<String> = list
        .iter()
        .map(|v| v.get("id").and_then(Value::as_text).map(Text::to_string))
        .collect::<Option<_>>()?;
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1]).then_some(ids)
}

fn by_id(
    at: &Path,
    a: &[Value],
    b: &[Value],
    ia: &[String],
    ib: &[String],
    out: &mut Vec<Component>,
) {
    let pos_a: HashMap<&str, usize> = ia.iter().enumerate().map(|(i, s)| (&**s, i)).collect();
    let pos_b: HashMap<&str, usize> = ib.iter().enumerate().map(|(j, s)| (&**s, j)).collect();
    // Deletes last first, so the indices of those still to delete stay put.
    for (i, id) in ia.iter().enumerate().rev() {
        if !pos_b.contains_key(id.as_str()) {
            out.push(Component::del(at.child(i)));
        }
    }
    // The kept elements, as their index in `to`, in the order they now stand.
    let mut cur: Vec<usize> = ia
        .iter()
        .filter_map(|s| pos_b.get(s.as_str()).copied())
        .collect();
    let stay = longest_increasing(&cur, b.len());
    let mut order = cur.clone();
    order.sort_unstable();
    // Each element that moves goes right after its predecessor in `to`'s order, taken in that
    // order: the elements placed so far then stand in order, and the last one placed ends it.
    for (r, &j) in order.iter().enumerate() {
        if stay[j] {
            continue;
        }
        let Some(k) = cur.iter().position(|&x| x == j) else {
            continue;
        };
        cur.remove(k);
        let dest = match r.checked_sub(1) {
            None => 0,
            Some(p) => cur.iter().position(|&x| x == order[p]).map_or(0, |q| q + 1),
        };
        cur.insert(dest, j);
        if dest != k {
            out.push(Component::mov(at.child(k), dest));
        }
    }
    // Inserts in target order: everything before index `j` is then already final.
    for (j, id) in ib.iter().enumerate() {
        if !pos_a.contains_key(id.as_str()) {
            out.push(Component::ins(at.child(j), b[j].clone()));
        }
    }
    for (j, id) in ib.iter().enumerate() {
        if let Some(&i) = pos_a.get(id.as_str()) {
            value(&at.child(j), &a[i], &b[j], out);
        }
    }
}

/// Marks (by value, each `< n`) a longest strictly increasing subsequence of `seq`: the
/// elements that need not move. O(len · log len).
fn longest_increasing(seq: &[usize], n: usize) -> Vec<bool> {
    // `tails[k]`: index in `seq` of the smallest end of an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (i, &x) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < x);
        prev[i] = k.checked_sub(1).map(|p| tails[p]);
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; n];
    let mut i = tails.last().copied();
    while let Some(k) = i {
        keep[seq[k]] = true;
        i = prev[k];
    }
    keep
}

fn by_index(at: &Path, a: &[Value], b: &[Value], out: &mut Vec<Component>) {
    let pre = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (a.len() - pre - suf, b.len() - pre - suf);
    let paired = pre + ma.min(mb);
    for k in pre..paired {
        value(&at.child(k), &a[k], &b[k], out);
    }
    // What the old middle has beyond the new one goes, last first; what the new one has beyond
    // the old one comes in after the paired elements.
    for k in (paired..pre + ma).rev() {
        out.push(Component::del(at.child(k)));
    }
    for (k, v) in b.iter().enumerate().take(pre + mb).skip(paired) {
        out.push(Component::ins(at.child(k), v.clone()));
    }
}

fn text(at: &Path, a: &Text, b: &Text, out: &mut Vec<Component>) {
    // One copy of each (a rope is read out once), then linear scans from both ends.
    let (a, b) = (a.to_string(), b.to_string());
    let (mut pre_bytes, mut pre_chars) = (0, 0);
    for (x, y) in a.chars().zip(b.chars()) {
        if x != y {
            break;
        }
        pre_bytes += x.len_utf8();
        pre_chars += 1;
    }
    let (ra, rb) = (&a[pre_bytes..], &b[pre_bytes..]);
    let suf: usize = ra
        .chars()
        .rev()
        .zip(rb.chars().rev())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x.len_utf8())
        .sum();
    let (old, new) = (&ra[..ra.len() - suf], &rb[..rb.len() - suf]);
    if old.is_empty() && new.is_empty() {
        return;
    }
    let mut op = TextOp::default();
    op.push(TextPart::Retain(pre_chars));
    op.push(TextPart::Insert(new.to_owned()));
    op.push(TextPart::Delete(old.chars().count()));
    out.push(Component::Text {
        path: at.clone(),
        op,
    });
}

/// Where the layer, track or clip with `id` stands: `canvas.layers[i]`, `timeline.tracks[i]`
/// or `timeline.tracks[i].clips[j]`.
pub fn find_element(doc: &Value, id: &str) -> Option<Path> {
    let has_id = |v: &Value| {
        v.get("id")
            .and_then(Value::as_text)
            .is_some_and(|t| *t == *id)
    };
    let layers = Path::root().child("canvas").child("layers");
    if let Some(i) = items(doc.at(layers.segs())).iter().position(has_id) {
        return Some(layers.child(i));
    }
    let tracks = Path::root().child("timeline").child("tracks");
    for (i, track) in items(doc.at(tracks.segs())).iter().enumerate() {
        if has_id(track) {
            return Some(tracks.child(i));
        }
        if let Some(j) = items(track.get("clips")).iter().position(has_id) {
            return Some(tracks.child(i).child("clips").child(j));
        }
    }
    None
}

/// The elements of a list, or none.
fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_arr).map_or(&[], Vec::as_slice)
}

/// The edit that brings back one layer, track or clip (by `id`) as it is in `old`, leaving the
/// rest of `head` as it is: a diff of the element where both have it (it stays where it now
/// stands); an `ins` at its old index (clamped) where only `old` has it, into the same list — a
/// clip into its old track, found by id; a `del` where only `head` has it. `None` when neither
/// has it, when it is a different kind of element in each (ids are unique within a list only),
/// or when its old track is gone from `head`.
pub fn restore_element(head: &Value, old: &Value, id: &str) -> Option<Op> {
    let now = find_element(head, id);
    let then = find_element(old, id);
    // Ids are unique within a list, not across lists: a layer and a clip may share one.
    let kind = |p: &Path| (p.len(), p.segs().first().cloned());
    if let (Some(p), Some(q)) = (&now, &then)
        && kind(p) != kind(q)
    {
        return None;
    }
    let c = match (now, then) {
        (Some(p), Some(q)) => return Some(diff_under(&p, head.at(p.segs())?, old.at(q.segs())?)),
        (Some(p), None) => Component::del(p),
        (None, Some(q)) => {
            let segs = q.segs();
            // A clip goes back into its track as the head has it.
            let parent = if segs.len() == 5 {
                let track = old.at(&segs[..3])?.get("id")?.as_text()?.to_string();
                let at = find_element(head, &track)?;
                // The track, not a layer or clip that shares its id.
                if at.len() != 3 || at.segs().first() != segs.first() {
                    return None;
                }
                at.child("clips")
            } else {
                Path::from(q.parent())
            };
            let len = head.at(parent.segs())?.as_arr()?.len();
            let at = q.last_index()?.min(len);
            Component::ins(parent.child(at), old.at(segs)?.clone())
        }
        (None, None) => return None,
    };
    Some(Op::new(vec![c]))
}
