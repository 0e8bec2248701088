//! Text operations: a sequence of retain / insert / delete over a string, counted in Unicode
//! scalar values. Single keystrokes and whole composed sessions of typing share this form, so
//! compose and transform are linear in the size of the operations, never in the history length.

use smallvec::SmallVec;

use crate::error::{OtError, Result};
use crate::path::Path;
use crate::value::Text;

/// One step of the wire form of a text op.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TextStep<'a> {
    Insert(&'a str),
    Delete(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TextPart {
    Retain(usize),
    Insert(String),
    Delete(usize),
}

/// A normalized text operation: no empty parts, no trailing retain, neighbours of one kind
/// merged, and an insert always before a delete at the same position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextOp {
    /// A keystroke is a retain and one insert or delete: held inline, no allocation.
    parts: SmallVec<[TextPart; 2]>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

impl TextOp {
    pub fn insert(pos: usize, s: impl Into<String>) -> TextOp {
        let mut op = TextOp::default();
        op.push(TextPart::Retain(pos));
        op.push(TextPart::Insert(s.into()));
        op
    }
    pub fn delete(pos: usize, n: usize) -> TextOp {
        let mut op = TextOp::default();
        op.push(TextPart::Retain(pos));
        op.push(TextPart::Delete(n));
        op
    }
    pub fn parts(&self) -> &[TextPart] {
        &self.parts
    }
    /// Inserts text and deletes none.
    pub fn inserts_only(&self) -> bool {
        self.parts.iter().all(|p| !matches!(p, TextPart::Delete(_)))
    }
    /// Deletes text and inserts none.
    pub fn deletes_only(&self) -> bool {
        self.parts.iter().all(|p| !matches!(p, TextPart::Insert(_)))
    }
    pub fn is_noop(&self) -> bool {
        self.parts.is_empty()
    }

    /// Appends a part, keeping the op normalized.
    pub fn push(&mut self, part: TextPart) {
        match part {
            TextPart::Retain(0) | TextPart::Delete(0) => {}
            TextPart::Insert(ref s) if s.is_empty() => {}
            TextPart::Retain(n) => match self.parts.last_mut() {
                Some(TextPart::Retain(m)) => *m += n,
                _ => self.parts.push(part),
            },
            TextPart::Delete(n) => match self.parts.last_mut() {
                Some(TextPart::Delete(m)) => *m += n,
                _ => self.parts.push(part),
            },
            TextPart::Insert(s) => {
                let len = self.parts.len();
                match self.parts.last_mut() {
                    Some(TextPart::Insert(t)) => t.push_str(&s),
                    // Keep inserts before deletes at one position.
                    Some(TextPart::Delete(_)) => {
                        if len >= 2
                            && let TextPart::Insert(t) = &mut self.parts[len - 2]
                        {
                            t.push_str(&s);
                        } else {
                            self.parts.insert(len - 1, TextPart::Insert(s));
                        }
                    }
                    _ => self.parts.push(TextPart::Insert(s)),
                }
            }
        }
    }

    fn trim(mut self) -> TextOp {
        if let Some(TextPart::Retain(_)) = self.parts.last() {
            self.parts.pop();
        }
        self
    }

    /// Length of the string this op applies to, at least.
    pub fn base_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                TextPart::Retain(n) | TextPart::Delete(n) => *n,
                TextPart::Insert(_) => 0,
            })
            .fold(0usize, usize::saturating_add)
    }

    /// Applies to `text`, returning the inverse (which carries the deleted characters).
    pub(crate) fn apply(&self, text: &mut Text, path: &Path) -> Result<TextOp> {
        let len = text.len_chars();
        let need = self.base_len();
        if need > len {
            return Err(OtError::TextOutOfBounds {
                path: path.clone(),
                pos: 0,
                end: need,
                len,
            });
        }
        // The inverse is built in normal form directly: parts map one to one (retain to
        // retain, insert to delete, delete to insert of the deleted chars), and neighbours
        // never merge since `self`'s don't. Only `insert s, delete n` at one position needs
        // its image swapped to `insert deleted, delete |s|`, and a trailing retain dropped.
        let mut inverse: SmallVec<[TextPart; 2]> = SmallVec::with_capacity(self.parts.len());
        let mut pos = 0;
        for part in &self.parts {
            match part {
                TextPart::Retain(n) => {
                    pos += n;
                    inverse.push(TextPart::Retain(*n));
                }
                TextPart::Insert(s) => {
                    let n = chars(s);
                    text.insert(pos, s, n);
                    pos += n;
                    inverse.push(TextPart::Delete(n));
                }
                TextPart::Delete(n) => {
                    let gone = TextPart::Insert(text.take(pos, *n));
                    match inverse.last_mut() {
                        Some(last @ TextPart::Delete(_)) => {
                            let del = std::mem::replace(last, gone);
                            inverse.push(del);
                        }
                        _ => inverse.push(gone),
                    }
                }
            }
        }
        if let Some(TextPart::Retain(_)) = inverse.last() {
            inverse.pop();
        }
        debug_assert!(inverse.iter().all(|p| part_len(p) > 0));
        Ok(TextOp { parts: inverse })
    }

    /// The op as (position, insert or delete) steps, each applying to the string left by the
    /// previous one: the wire form.
    pub fn steps(&self) -> Vec<(usize, TextStep<'_>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        for part in &self.parts {
            match part {
                TextPart::Retain(n) => pos += n,
                TextPart::Insert(s) => {
                    out.push((pos, TextStep::Insert(s)));
                    pos += chars(s);
                }
                TextPart::Delete(n) => out.push((pos, TextStep::Delete(*n))),
            }
        }
        out
    }

    /// `self` then `other`, as one op.
    pub fn compose(&self, other: &TextOp) -> TextOp {
        let mut out = TextOp::default();
        let mut a = Taker::new(&self.parts);
        for part in &other.parts {
            match part {
                TextPart::Retain(n) => {
                    let mut n = *n;
                    while n > 0 {
                        let chunk = a.take(n, Indivisible::Delete);
                        if !matches!(chunk, TextPart::Delete(_)) {
                            n -= part_len(&chunk);
                        }
                        out.push(chunk);
                    }
                }
                TextPart::Insert(s) => out.push(TextPart::Insert(s.clone())),
                TextPart::Delete(n) => {
                    let mut n = *n;
                    while n > 0 {
                        match a.take(n, Indivisible::Delete) {
                            TextPart::Retain(m) => {
                                out.push(TextPart::Delete(m));
                                n -= m;
                            }
                            TextPart::Insert(s) => n -= chars(&s),
                            d @ TextPart::Delete(_) => out.push(d),
                        }
                    }
                }
            }
        }
        while let Some(p) = a.next_whole() {
            out.push(p);
        }
        out.trim()
    }

    /// `self` rewritten to apply after `other`. `left` means self's inserts go first where both
    /// insert at one position (the earlier version, in server order).
    pub fn transform(&self, other: &TextOp, left: bool) -> TextOp {
        let mut out = TextOp::default();
        let mut a = Taker::new(&self.parts);
        for part in &other.parts {
            match part {
                TextPart::Retain(n) => {
                    let mut n = *n;
                    while n > 0 {
                        let chunk = a.take(n, Indivisible::Insert);
                        if !matches!(chunk, TextPart::Insert(_)) {
                            n -= part_len(&chunk);
                        }
                        out.push(chunk);
                    }
                }
                TextPart::Insert(s) => {
                    if left && a.peek_insert() {
                        out.push(a.take(usize::MAX, Indivisible::Insert));
                    }
                    out.push(TextPart::Retain(chars(s)));
                }
                TextPart::Delete(n) => {
                    let mut n = *n;
                    while n > 0 {
                        match a.take(n, Indivisible::Insert) {
                            TextPart::Retain(m) => n -= m,
                            ins @ TextPart::Insert(_) => out.push(ins),
                            // Deleted by both: delete nothing twice.
                            TextPart::Delete(m) => n -= m,
                        }
                    }
                }
            }
        }
        while let Some(p) = a.next_whole() {
            out.push(p);
        }
        out.trim()
    }

    /// Moves a caret (or selection end) at char index `pos` past this op. `stick_after` puts
    /// the caret after text inserted exactly at it (its own typing).
    pub fn transform_position(&self, pos: usize, stick_after: bool) -> usize {
        // `at` walks the original string; `out` is the caret in the new one.
        let (mut at, mut out) = (0, pos);
        for part in &self.parts {
            if at > pos {
                break;
            }
            match part {
                TextPart::Retain(n) => at += n,
                TextPart::Insert(s) => {
                    if at < pos || stick_after {
                        out += chars(s);
                    }
                }
                TextPart::Delete(n) => {
                    if at < pos {
                        out -= (*n).min(pos - at);
                    }
                    at += n;
                }
            }
        }
        out
    }
}

fn part_len(p: &TextPart) -> usize {
    match p {
        TextPart::Retain(n) | TextPart::Delete(n) => *n,
        TextPart::Insert(s) => chars(s),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Indivisible {
    Insert,
    Delete,
}

/// Walks an op's parts, handing out pieces of at most `n` chars.
struct Taker<'a> {
    parts: &'a [TextPart],
    idx: usize,
    /// Chars of `parts[idx]` already taken.
    offset: usize,
}

impl<'a> Taker<'a> {
    fn new(parts: &'a [TextPart]) -> Self {
        Taker {
            parts,
            idx: 0,
            offset: 0,
        }
    }
    fn peek_insert(&self) -> bool {
        matches!(self.parts.get(self.idx), Some(TextPart::Insert(_)))
    }
    fn next_whole(&mut self) -> Option<TextPart> {
        let p = self.parts.get(self.idx)?;
        let whole = if self.offset == 0 {
            p.clone()
        } else {
            match p {
                TextPart::Retain(n) => TextPart::Retain(n - self.offset),
                TextPart::Delete(n) => TextPart::Delete(n - self.offset),
                TextPart::Insert(s) => TextPart::Insert(s.chars().skip(self.offset).collect()),
            }
        };
        self.idx += 1;
        self.offset = 0;
        Some(whole)
    }
    /// Takes up to `n` chars; a part of the indivisible kind is taken whole. Past the end the
    /// op retains everything.
    fn take(&mut self, n: usize, indivisible: Indivisible) -> TextPart {
        let Some(p) = self.parts.get(self.idx) else {
            return TextPart::Retain(n);
        };
        let whole = match p {
            TextPart::Insert(_) => indivisible == Indivisible::Insert,
            TextPart::Delete(_) => indivisible == Indivisible::Delete,
            TextPart::Retain(_) => false,
        };
        if whole {
            return self.next_whole().unwrap_or(TextPart::Retain(n));
        }
        let remaining = part_len(p) - self.offset;
        if remaining <= n {
            return self.next_whole().unwrap_or(TextPart::Retain(n));
        }
        let start = self.offset;
        self.offset += n;
        match p {
            TextPart::Retain(_) => TextPart::Retain(n),
            TextPart::Delete(_) => TextPart::Delete(n),
            TextPart::Insert(s) => TextPart::Insert(s.chars().skip(start).take(n).collect()),
        }
    }
}
