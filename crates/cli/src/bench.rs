//! `montage bench`: a load generator over real WebSockets.

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args)]
pub struct BenchArgs {}

pub fn run(_a: BenchArgs) -> Result<()> {
    bail!("montage bench is not built yet")
}
