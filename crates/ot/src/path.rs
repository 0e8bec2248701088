//! Paths into the document: object keys and list indices.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub fn key(&self) -> Option<&str> {
        match self {
            Seg::Key(k) => Some(k),
            Seg::Index(_) => None,
        }
    }
    pub fn index(&self) -> Option<usize> {
        match self {
            Seg::Index(i) => Some(*i),
            Seg::Key(_) => None,
        }
    }
}

impl From<&str> for Seg {
    fn from(k: &str) -> Self {
        Seg::Key(k.to_owned())
    }
}
impl From<String> for Seg {
    fn from(k: String) -> Self {
        Seg::Key(k)
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// A path from the document root: `["canvas", "layers", 0, "x"]`. Shared, so the copies that
/// inverses and transformed components keep cost a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path(Arc<[Seg]>);

impl Default for Path {
    fn default() -> Self {
        Path::root()
    }
}

impl Path {
    pub fn root() -> Self {
        Path(Arc::from(Vec::new()))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn segs(&self) -> &[Seg] {
        &self.0
    }
    pub fn last(&self) -> Option<&Seg> {
        self.0.last()
    }
    pub fn parent(&self) -> &[Seg] {
        match self.0.split_last() {
            Some((_, p)) => p,
            None => &[],
        }
    }
    /// The last segment as a list index, if it is one.
    pub fn last_index(&self) -> Option<usize> {
        self.0.last().and_then(Seg::index)
    }
    pub fn child(&self, seg: impl Into<Seg>) -> Path {
        let mut v = self.0.to_vec();
        v.push(seg.into());
        Path::from(v)
    }
    pub fn with_last_index(&self, i: usize) -> Path {
        self.with_index_at(self.0.len().saturating_sub(1), i)
    }
    /// A copy with segment `at` replaced by index `i`.
    pub fn with_index_at(&self, at: usize, i: usize) -> Path {
        let mut v = self.0.to_vec();
        if let Some(seg) = v.get_mut(at) {
            *seg = Seg::Index(i);
        }
        Path::from(v)
    }
    /// True if `self` is a prefix of `other` (equal counts).
    pub fn is_prefix_of(&self, other: &[Seg]) -> bool {
        other.len() >= self.0.len() && other[..self.0.len()] == self.0[..]
    }
}

impl From<Vec<Seg>> for Path {
    fn from(v: Vec<Seg>) -> Self {
        Path(Arc::from(v))
    }
}

impl From<&[Seg]> for Path {
    fn from(v: &[Seg]) -> Self {
        Path(Arc::from(v))
    }
}

/// Builds a path: `path!["canvas", "layers", 0]`.
#[macro_export]
macro_rules! path {
    ($($seg:expr),* $(,)?) => { $crate::Path::from(vec![$($crate::Seg::from($seg)),*]) };
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (n, s) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            match s {
                Seg::Key(k) => write!(f, "{k:?}")?,
                Seg::Index(i) => write!(f, "{i}")?,
            }
        }
        f.write_str("]")
    }
}

impl Serialize for Path {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for seg in self.0.iter() {
            match seg {
                Seg::Key(k) => seq.serialize_element(k)?,
                Seg::Index(i) => seq.serialize_element(i)?,
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PathV;
        impl<'de> Visitor<'de> for PathV {
            type Value = Path;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path: an array of keys and indices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Path, A::Error> {
                let mut v = Vec::with_capacity(a.size_hint().unwrap_or(4).min(64));
                while let Some(s) = a.next_element::<Seg>()? {
                    if v.len() >= crate::MAX_PATH_DEPTH {
                        return Err(de::Error::custom("path deeper than 64 segments"));
                    }
                    v.push(s);
                }
                Ok(Path::from(v))
            }
        }
        d.deserialize_seq(PathV)
    }
}

struct SegV;
impl<'de> Visitor<'de> for SegV {
    type Value = Seg;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key or a non-negative integer index")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Seg, E> {
        Ok(Seg::Key(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Seg, E> {
        Ok(Seg::Key(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seg, E> {
        usize::try_from(v)
            .map(Seg::Index)
            .map_err(|_| E::custom("index too large"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seg, E> {
        usize::try_from(v)
            .map(Seg::Index)
            .map_err(|_| E::custom("negative index"))
    }
}
impl<'de> Deserialize<'de> for Seg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SegV)
    }
}
