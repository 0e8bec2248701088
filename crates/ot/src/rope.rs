//! A rope that holds back one edit. Typing is mostly runs of keystrokes at adjacent positions
//! (each one after the last, or backspaces over what was just typed); such a run is merged into
//! one held edit and reaches the skip list in one walk, not one walk per keystroke.
//!
//! Reads take `&self` and see the held edit without applying it: every read (length, slices,
//! chunks, equality) is of the text with the held edit in place, whether or not one is held.
//! (jumprope's own `JumpRopeBuf` buffers edits too, but behind a `RefCell` — `Value` would no
//! longer be `Sync` — it applies the buffer on every read, and it can't hand back the deleted
//! text an inverse needs.)

use std::ops::Range;

use jumprope::JumpRope;

/// A held insert takes further inserts and deletes inside it (not just at its end) only while
/// it is at most this long, so the string shifts it costs stay small.
/// (Small in unit tests, so the random runs cross it.)
const MAX_MIDDLE_EDIT: usize = if cfg!(test) { 16 } else { 4096 };
/// The held insert's buffer is kept from one run to the next up to this capacity.
const MAX_KEPT_CAPACITY: usize = 4096;

#[derive(Clone)]
pub(crate) struct Rope {
    rope: JumpRope,
    held: Held,
    /// The text of a held insert; empty otherwise.
    text: String,
    /// With a held delete: the text just before and just after its place, read from the rope
    /// with the chars it took, so a run of backspaces or forward deletes reads the rope once
    /// every `WINDOW` chars rather than once a key. Empty otherwise.
    before: Window,
    after: Window,
}

/// Chars read around a delete, either side.
/// (Small in unit tests, so the random runs read past windows.)
const WINDOW: usize = if cfg!(test) { 4 } else { 32 };

#[derive(Clone, Default)]
struct Window {
    text: String,
    chars: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Held {
    Nothing,
    /// `text` (`chars` chars) stands before rope char `at`.
    Insert {
        at: usize,
        chars: usize,
    },
    /// Rope chars `at..at + chars` (`bytes` bytes) are gone.
    Delete {
        at: usize,
        chars: usize,
        bytes: usize,
    },
}

impl Rope {
    pub(crate) fn new(s: &str) -> Rope {
        // Seeded: the rope's shape, and so its speed, is the same on every run.
        let mut rope = JumpRope::new_from_seed(0x6d6f6e74);
        rope.insert(0, s);
        Rope {
            rope,
            held: Held::Nothing,
            text: String::new(),
            before: Window::default(),
            after: Window::default(),
        }
    }

    pub(crate) fn len_chars(&self) -> usize {
        match self.held {
            Held::Nothing => self.rope.len_chars(),
            Held::Insert { chars, .. } => self.rope.len_chars() + chars,
            Held::Delete { chars, .. } => self.rope.len_chars() - chars,
        }
    }

    pub(crate) fn len_bytes(&self) -> usize {
        match self.held {
            Held::Nothing => self.rope.len_bytes(),
            Held::Insert { .. } => self.rope.len_bytes() + self.text.len(),
            Held::Delete { bytes, .. } => self.rope.len_bytes() - bytes,
        }
    }

    /// Inserts `s` (`n` chars) at char `pos`; the caller has checked `pos <= len_chars`.
    pub(crate) fn insert(&mut self, pos: usize, s: &str, n: usize) {
        debug_assert_eq!(n, s.chars().count());
        if n == 0 {
            return;
        }
        if let Held::Insert { at, chars } = &mut self.held
            && (*at..=*at + *chars).contains(&pos)
        {
            if pos == *at + *chars {
                self.text.push_str(s);
                *chars += n;
                return;
            }
            if self.text.len() <= MAX_MIDDLE_EDIT {
                let b = byte_of(&self.text, *chars, pos - *at);
                self.text.insert_str(b, s);
                *chars += n;
                return;
            }
        }
        self.flush();
        self.text.push_str(s);
        self.held = Held::Insert { at: pos, chars: n };
    }

    /// Removes the chars `pos..pos + n` and returns them; the caller has checked the bounds.
    pub(crate) fn take(&mut self, pos: usize, n: usize) -> String {
        if n == 0 {
            return String::new();
        }
        if let Held::Insert { at, chars } = &mut self.held
            && *at <= pos
            && pos + n <= *at + *chars
            && (pos + n == *at + *chars || self.text.len() <= MAX_MIDDLE_EDIT)
        {
            let a = byte_of(&self.text, *chars, pos - *at);
            let b = byte_of(&self.text, *chars, pos + n - *at);
            let gone = self.text[a..b].to_owned();
            self.text.replace_range(a..b, "");
            *chars -= n;
            if *chars == 0 {
                self.held = Held::Nothing;
            }
            return gone;
        }
        if let Held::Delete { at, chars, bytes } = &mut self.held
            && pos <= *at
            && *at <= pos + n
            && *at - pos <= self.before.chars
            && pos + n - *at <= self.after.chars
        {
            // Next to the held delete, inside what was read around it.
            let mut gone = self.before.split_off_last(*at - pos);
            if pos + n > *at {
                gone.push_str(&self.after.take_first(pos + n - *at));
            }
            *at = pos;
            *chars += n;
            *bytes += gone.len();
            return gone;
        }
        // Read the range from the rope with up to `WINDOW` chars either side.
        let lo = pos.saturating_sub(WINDOW);
        let hi = (pos + n + WINDOW).min(self.len_chars());
        let mut read = self.slice(lo, hi - lo);
        let (a, b) = (
            byte_of(&read, hi - lo, pos - lo),
            byte_of(&read, hi - lo, pos + n - lo),
        );
        let after = read.split_off(b);
        let gone = read.split_off(a);
        match &mut self.held {
            // The delete reaches the held one's place: one wider delete of the rope.
            Held::Delete { at, chars, bytes } if pos <= *at && *at <= pos + n => {
                *at = pos;
                *chars += n;
                *bytes += gone.len();
            }
            _ => {
                self.flush();
                self.held = Held::Delete {
                    at: pos,
                    chars: n,
                    bytes: gone.len(),
                };
            }
        }
        self.before = Window {
            text: read,
            chars: pos - lo,
        };
        self.after = Window {
            text: after,
            chars: hi - (pos + n),
        };
        gone
    }

    /// The chars `pos..pos + n`; the caller has checked the bounds.
    pub(crate) fn slice(&self, pos: usize, n: usize) -> String {
        let mut out = String::new();
        self.chunks(pos..pos + n).for_each(|c| out.push_str(c));
        out
    }

    /// The chars in `range` of the text (held edit included), in pieces.
    pub(crate) fn chunks(&self, range: Range<usize>) -> impl Iterator<Item = &str> {
        let (before, held, after) = self.pieces(range);
        let rope = |r: Range<usize>| {
            (r.start < r.end)
                .then(|| self.rope.slice_substrings(r))
                .into_iter()
                .flatten()
        };
        rope(before).chain(held).chain(rope(after))
    }

    /// Where the chars of `range` are: a range of the rope, some of the held text, and a
    /// further range of the rope (empty ranges where there is nothing).
    fn pieces(&self, range: Range<usize>) -> (Range<usize>, Option<&str>, Range<usize>) {
        let Range { start, end } = range;
        match self.held {
            Held::Nothing => (start..end, None, 0..0),
            Held::Insert { at, chars } => {
                let (a, b) = (start.max(at), end.min(at + chars));
                let held = (a < b).then(|| {
                    let x = byte_of(&self.text, chars, a - at);
                    let y = byte_of(&self.text, chars, b - at);
                    &self.text[x..y]
                });
                let c = start.max(at + chars);
                let after = if c < end {
                    c - chars..end - chars
                } else {
                    0..0
                };
                (start.min(at)..end.min(at), held, after)
            }
            Held::Delete { at, chars, .. } => {
                let c = start.max(at);
                let after = if c < end {
                    c + chars..end + chars
                } else {
                    0..0
                };
                (start.min(at)..end.min(at), None, after)
            }
        }
    }

    /// Applies the held edit to the rope.
    fn flush(&mut self) {
        match std::mem::replace(&mut self.held, Held::Nothing) {
            Held::Nothing => {}
            Held::Insert { at, .. } => {
                self.rope.insert(at, &self.text);
                if self.text.capacity() > MAX_KEPT_CAPACITY {
                    self.text = String::new();
                } else {
                    self.text.clear();
                }
            }
            Held::Delete { at, chars, .. } => {
                self.rope.remove(at..at + chars);
                self.before = Window::default();
                self.after = Window::default();
            }
        }
    }
}

impl Window {
    /// Removes and returns the last `k` chars.
    fn split_off_last(&mut self, k: usize) -> String {
        let b = byte_of(&self.text, self.chars, self.chars - k);
        self.chars -= k;
        self.text.split_off(b)
    }
    /// Removes and returns the first `k` chars.
    fn take_first(&mut self, k: usize) -> String {
        let b = byte_of(&self.text, self.chars, k);
        self.chars -= k;
        self.text.drain(..b).collect()
    }
}

/// Byte offset of char `pos` in `s`, which has `chars` chars (`s.len()` past the end).
fn byte_of(s: &str, chars: usize, pos: usize) -> usize {
    if chars == s.len() {
        // ASCII.
        pos.min(s.len())
    } else {
        // SIMD, not a char-by-char walk: a long held insert of non-ASCII text is scanned on
        // every backspace.
        str_indices::chars::to_byte_idx(s, pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random edits and reads, interleaved, against a plain `Vec<char>`.
    #[test]
    fn reads_see_the_held_edit() {
        let alphabet: Vec<char> = "ab€😀\n".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for round in 0..60 {
            let start: String = (0..next(200))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let mut want: Vec<char> = start.chars().collect();
            let mut rope = Rope::new(&start);
            let mut cursor = next(want.len() + 1);
            for step in 0..200 {
                // Runs of typing, backspaces or forward deletes at a cursor that sometimes jumps.
                let mode = match next(12) {
                    0 => {
                        cursor = next(want.len() + 1);
                        continue;
                    }
                    1..=3 => 1,
                    4..=5 => 2,
                    _ => 0,
                };
                for _ in 0..1 + next(20) {
                    if mode == 1 && cursor > 0 {
                        let n = 1 + next(cursor.min(3));
                        let gone = rope.take(cursor - n, n);
                        let expect: String = want.drain(cursor - n..cursor).collect();
                        assert_eq!(gone, expect, "round {round} step {step}");
                        cursor -= n;
                    } else if mode == 2 && cursor < want.len() {
                        let n = 1 + next((want.len() - cursor).min(3));
                        let gone = rope.take(cursor, n);
                        let expect: String = want.drain(cursor..cursor + n).collect();
                        assert_eq!(gone, expect, "round {round} step {step}");
                    } else if mode == 0 {
                        let s: String = (0..1 + next(3))
                            .map(|_| alphabet[next(alphabet.len())])
                            .collect();
                        let n = s.chars().count();
                        rope.insert(cursor, &s, n);
                        want.splice(cursor..cursor, s.chars());
                        cursor += n;
                    }
                }
                let whole: String = want.iter().collect();
                assert_eq!(rope.len_chars(), want.len());
                assert_eq!(rope.len_bytes(), whole.len());
                let a = next(want.len() + 1);
                let b = a + next(want.len() - a + 1);
                let part: String = want[a..b].iter().collect();
                assert_eq!(rope.slice(a, b - a), part, "round {round} step {step}");
                assert_eq!(rope.chunks(0..want.len()).collect::<String>(), whole);
            }
            rope.flush();
            assert_eq!(rope.held, Held::Nothing);
            assert_eq!(rope.rope.to_string(), want.iter().collect::<String>());
        }
    }
}
