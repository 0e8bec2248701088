//! The document value: JSON with long strings held in a rope.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rope::Rope;

/// Strings longer than this many bytes live in a rope, so editing a long caption or script costs
/// O(log n) per keystroke instead of a memmove of the whole string.
const ROPE_THRESHOLD: usize = 512;

/// A JSON value. Objects keep their keys sorted, so two equal documents serialize identically.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Num(f64),
    Str(Text),
    Arr(Vec<Value>),
    Obj(BTreeMap<String, Value>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Num(_) => "number",
            Value::Str(_) => "string",
            Value::Arr(_) => "array",
            Value::Obj(_) => "object",
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_obj(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Obj(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_arr(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Arr(a) => Some(a),
            _ => None,
        }
    }
    pub fn as_text(&self) -> Option<&Text> {
        match self {
            Value::Str(t) => Some(t),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_obj().and_then(|m| m.get(key))
    }
    /// Follows a path, if every step exists.
    pub fn at(&self, path: &[crate::Seg]) -> Option<&Value> {
        let mut v = self;
        for seg in path {
            v = match (v, seg) {
                (Value::Obj(m), crate::Seg::Key(k)) => m.get(k)?,
                (Value::Arr(a), crate::Seg::Index(i)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Text::from(s.into()))
    }
    pub fn obj<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Obj(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The document a new session starts with (docs/PROTOCOL.md "The document").
    pub fn new_document() -> Value {
        Value::obj([
            ("title", Value::str("")),
            ("assets", Value::Obj(BTreeMap::new())),
            (
                "canvas",
                Value::obj([
                    ("width", Value::Num(1920.0)),
                    ("height", Value::Num(1080.0)),
                    ("layers", Value::Arr(vec![])),
                ]),
            ),
            ("timeline", Value::obj([("tracks", Value::Arr(vec![]))])),
            ("meta", Value::Obj(BTreeMap::new())),
        ])
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Num(n) => num_to_json(*n),
            Value::Str(t) => serde_json::Value::String(t.to_string()),
            Value::Arr(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Obj(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// Converts from serde_json; non-finite numbers can't occur there.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Num(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::Arr(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(m) => Value::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

fn num_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Num(n)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

/// A string that edits by Unicode scalar index. Short strings are a plain `String`; long ones a
/// rope (jumprope, seeded deterministically) that holds back the latest run of adjacent edits
/// (`crate::rope`). Every read sees the text with all edits in place.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Small(String),
    Rope(Box<Rope>),
}

impl Text {
    pub fn len_chars(&self) -> usize {
        match &self.0 {
            Repr::Small(s) => s.chars().count(),
            Repr::Rope(r) => r.len_chars(),
        }
    }
    pub fn len_bytes(&self) -> usize {
        match &self.0 {
            Repr::Small(s) => s.len(),
            Repr::Rope(r) => r.len_bytes(),
        }
    }
    /// Inserts `s` (`n` chars) at a char index; the caller has checked `pos <= len_chars`.
    pub(crate) fn insert(&mut self, pos: usize, s: &str, n: usize) {
        match &mut self.0 {
            Repr::Small(small) => {
                if small.len() + s.len() > ROPE_THRESHOLD {
                    let mut r = Rope::new(small);
                    r.insert(pos, s, n);
                    self.0 = Repr::Rope(Box::new(r));
                } else {
                    let b = byte_of(small, pos);
                    small.insert_str(b, s);
                }
            }
            Repr::Rope(r) => r.insert(pos, s, n),
        }
    }
    /// Removes a char range and returns what it held; the caller has checked the bounds.
    pub(crate) fn take(&mut self, pos: usize, len: usize) -> String {
        match &mut self.0 {
            Repr::Small(s) => {
                let a = byte_of(s, pos);
                let b = a + byte_of(&s[a..], len);
                s.drain(a..b).collect()
            }
            Repr::Rope(r) => r.take(pos, len),
        }
    }
    /// The chars in `pos..pos+len`; the caller has checked the bounds.
    pub fn slice(&self, pos: usize, len: usize) -> String {
        match &self.0 {
            Repr::Small(s) => {
                let a = byte_of(s, pos);
                let b = a + byte_of(&s[a..], len);
                s[a..b].to_owned()
            }
            Repr::Rope(r) => r.slice(pos, len),
        }
    }
    /// The whole text, in pieces.
    fn chunks(&self) -> impl Iterator<Item = &str> {
        let (small, rope) = match &self.0 {
            Repr::Small(s) => (Some(s.as_str()), None),
            Repr::Rope(r) => (None, Some(r.chunks(0..r.len_chars()))),
        };
        small.into_iter().chain(rope.into_iter().flatten())
    }
    /// True if the text is `other`, read piece by piece.
    fn eq_str(&self, other: &str) -> bool {
        if self.len_bytes() != other.len() {
            return false;
        }
        let mut rest = other;
        self.chunks().all(|c| match rest.strip_prefix(c) {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        }) && rest.is_empty()
    }
}

/// Byte offset of char index `pos` in `s` (or `s.len()` past the end).
fn byte_of(s: &str, pos: usize) -> usize {
    str_indices::chars::to_byte_idx(s, pos)
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        if s.len() > ROPE_THRESHOLD {
            Text(Repr::Rope(Box::new(Rope::new(&s))))
        } else {
            Text(Repr::Small(s))
        }
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.chunks().try_for_each(|c| f.write_str(c))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a == b,
            (Repr::Small(a), _) => other.eq_str(a),
            (_, Repr::Small(b)) => self.eq_str(b),
            _ => self.len_bytes() == other.len_bytes() && self.eq_str(&other.to_string()),
        }
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Small(t) => s.serialize_str(t),
            Repr::Rope(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    s.serialize_i64(*n as i64)
                } else {
                    s.serialize_f64(*n)
                }
            }
            Value::Str(t) => t.serialize(s),
            Value::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Obj(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Levels one serde_json parser reads before the rest of a value is handed to a fresh one:
/// serde_json refuses nesting past 128 levels (its stack guard), and a document stored before
/// depth was capped may be deeper than that.
const PARSE_CHUNK: usize = 100;

impl Value {
    /// Reads JSON text of any nesting depth. Every `PARSE_CHUNK` levels the rest of the value
    /// is skipped as raw text (serde_json skips without recursing) and read by a new parser, so
    /// whatever the writer wrote can be read back; depth is bounded where documents are edited.
    pub fn from_json_str(s: &str) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_str(s);
        let v = Levels(PARSE_CHUNK).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }

    /// JSON nesting: 0 for a scalar, one more than its deepest child for an array or object.
    pub fn depth(&self) -> usize {
        match self {
            Value::Arr(a) => 1 + a.iter().map(Value::depth).max().unwrap_or(0),
            Value::Obj(m) => 1 + m.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

/// Reads a value with this many levels left before the parser is restarted (`usize::MAX`: the
/// plain `Deserialize`, which never restarts).
struct Levels(usize);

impl<'de> DeserializeSeed<'de> for Levels {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0 == 0 {
            let raw = <&serde_json::value::RawValue>::deserialize(d)?;
            return Value::from_json_str(raw.get()).map_err(de::Error::custom);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Levels {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Num(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Num(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        if n.is_finite() {
            Ok(Value::Num(n))
        } else {
            Err(E::custom("non-finite number"))
        }
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(Text::from(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = a.next_element_seed(Levels(self.0.saturating_sub(1)))? {
            v.push(x);
        }
        Ok(Value::Arr(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut m = BTreeMap::new();
        while let Some(k) = a.next_key::<String>()? {
            let v = a.next_value_seed(Levels(self.0.saturating_sub(1)))?;
            m.insert(k, v);
        }
        Ok(Value::Obj(m))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Levels(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"a":{"a":…1…}}` nested `levels` deep.
    fn nested(levels: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn documents_deeper_than_serde_json_reads_are_read_back() {
        let text = nested(300);
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "serde_json's own limit"
        );
        let v = Value::from_json_str(&text).unwrap();
        assert_eq!(v.depth(), 300);
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        let shallow = r#"{"b":[1,"x",{"c":null}],"a":true}"#;
        assert_eq!(
            Value::from_json_str(shallow).unwrap(),
            serde_json::from_str::<Value>(shallow).unwrap()
        );
        assert!(
            Value::from_json_str(r#"{"a":1} x"#).is_err(),
            "trailing text"
        );
        let broken = nested(150).replacen("1}", "1,}", 1);
        assert!(
            Value::from_json_str(&broken).is_err(),
            "malformed deep down"
        );
    }
}
