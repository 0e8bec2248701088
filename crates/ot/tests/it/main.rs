//! One integration-test binary for montage-ot (fast to link on small machines).

mod actions;
mod clip_edges;
mod delta;
mod diff;
mod fuzz;
mod laws;
mod media_table;
mod ranges;
mod robust;
mod rules;
mod sim;
mod text;
mod traces;
mod vectors;
mod wire;
