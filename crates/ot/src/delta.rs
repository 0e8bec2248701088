//! Delta compression (the system design's `MediaDelta`): a run of edits from one base version,
//! coalesced into as few components as apply the same change, with exact repeats run-length
//! encoded. Used to catch a client up, and to batch what a slow link receives.

use serde::{Deserialize, Serialize};

use crate::component::Component;
use crate::op::Op;

/// Edits made one after another from `base_version`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaDelta {
    pub base_version: u64,
    pub operations: Vec<Op>,
}

/// A component repeated `count` times in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub count: u32,
    pub component: Component,
}

/// The compressed form: applying `expand()` equals applying every operation in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompressedDelta {
    pub base_version: u64,
    pub runs: Vec<Run>,
}

impl MediaDelta {
    pub fn new(base_version: u64, operations: Vec<Op>) -> Self {
        MediaDelta {
            base_version,
            operations,
        }
    }

    pub fn component_count(&self) -> usize {
        self.operations.iter().map(Op::len).sum()
    }

    /// Coalesces runs (a slider drag of writes to one path becomes its last write; typing
    /// becomes one text op) and run-length encodes exact repeats.
    pub fn compress(&self) -> CompressedDelta {
        let mut merged = Op::default();
        for op in &self.operations {
            for c in op.components() {
                merged.push_merged(c.clone());
            }
        }
        let mut runs: Vec<Run> = Vec::new();
        for c in merged.0 {
            match runs.last_mut() {
                Some(r) if r.component == c && r.count < u32::MAX => r.count += 1,
                _ => runs.push(Run {
                    count: 1,
                    component: c,
                }),
            }
        }
        CompressedDelta {
            base_version: self.base_version,
            runs,
        }
    }

    /// Size of the operations as JSON arrays, the way they travel one by one.
    pub fn json_bytes(&self) -> usize {
        self.operations
            .iter()
            .map(|op| serde_json::to_vec(op).map_or(0, |v| v.len()))
            .sum()
    }
}

impl CompressedDelta {
    pub fn component_count(&self) -> usize {
        self.runs.len()
    }

    /// The single edit this delta stands for.
    pub fn expand(&self) -> Op {
        let mut out = Vec::new();
        for r in &self.runs {
            for _ in 0..r.count {
                out.push(r.component.clone());
            }
        }
        Op(out)
    }

    pub fn json_bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(0, |v| v.len())
    }
}

#[derive(Serialize, Deserialize)]
struct WireRun {
    #[serde(default = "one", skip_serializing_if = "is_one")]
    n: u32,
    c: Op,
}
fn one() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}

#[derive(Serialize, Deserialize)]
struct WireDelta {
    base_version: u64,
    runs: Vec<WireRun>,
}

/// JSON: `{"base_version":V,"runs":[{"n":600,"c":[component]},{"c":[…]}]}`; a text run that
/// spans several wire components keeps them together in one `c`.
impl Serialize for CompressedDelta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireDelta {
            base_version: self.base_version,
            runs: self
                .runs
                .iter()
                .map(|r| WireRun {
                    n: r.count,
                    c: Op(vec![r.component.clone()]),
                })
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CompressedDelta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireDelta::deserialize(d)?;
        let mut runs = Vec::with_capacity(w.runs.len());
        for r in w.runs {
            // Wire text steps re-merge into one component.
            let mut op = Op::default();
            for c in r.c.0 {
                op.push_merged(c);
            }
            if op.len() != 1 {
                return Err(serde::de::Error::custom(
                    "each run holds exactly one component",
                ));
            }
            runs.push(Run {
                count: r.n,
                component: op.0.remove(0),
            });
        }
        Ok(CompressedDelta {
            base_version: w.base_version,
            runs,
        })
    }
}
