//! Real editing traces (`traces/` at the repository root, CC BY 4.0; see its README).

use std::io::Read;

use montage_ot::{Component, Op, Value, path};

use crate::sim::{Sim, ToClient};

pub fn load(name: &str) -> serde_json::Value {
    let file = format!("{}/../../traces/{name}.json.gz", env!("CARGO_MANIFEST_DIR"));
    let gz = std::fs::read(&file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    let mut s = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut s)
        .expect("gunzip trace");
    serde_json::from_str(&s).expect("trace JSON")
}

/// A trace patch `[pos, del, ins]` as components on the title.
pub fn patch_components(p: &serde_json::Value, out: &mut Vec<Component>) {
    let pos = p[0].as_u64().expect("pos") as usize;
    let del = p[1].as_u64().expect("del") as usize;
    let ins = p[2].as_str().expect("ins");
    if del > 0 {
        out.push(Component::text_delete(path!["title"], pos, del));
    }
    if !ins.is_empty() {
        out.push(Component::text_insert(path!["title"], pos, ins));
    }
}

pub fn txn_op(txn: &serde_json::Value) -> Op {
    let mut comps = Vec::new();
    for p in txn["patches"].as_array().expect("patches") {
        patch_components(p, &mut comps);
    }
    Op::new(comps)
}

fn title(d: &Value) -> String {
    d.get("title")
        .and_then(Value::as_text)
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[test]
fn automerge_paper_replays_to_its_end_content() {
    let t = load("automerge-paper");
    let mut doc = Value::new_document();
    for txn in t["txns"].as_array().expect("txns") {
        txn_op(txn).apply(&mut doc).expect("trace edit applies");
    }
    assert_eq!(title(&doc), t["endContent"].as_str().expect("endContent"));
}

/// Two people typing at once with a second of latency, replayed through the client/server
/// simulator: each agent is a site that makes each transaction on exactly the state its
/// parents name, and sends it at the base it had seen; the server transforms. Agents edit as
/// soon as their state allows; when each waits for the other, `first`'s edits reach the
/// server first. Returns the server's final text once every site has converged.
pub fn replay_friendsforever(first: usize) -> (String, String) {
    let t = load("friendsforever");
    let sim = replay_concurrent(&t, first, false);
    (
        title(&sim.server.doc),
        t["endContent"].as_str().expect("endContent").to_owned(),
    )
}

/// Replays a concurrent-format trace (see `replay_friendsforever`).
pub fn replay_concurrent(t: &serde_json::Value, first: usize, record: bool) -> Sim {
    let txns = t["txns"].as_array().expect("txns");
    // need[i]: how many of the other agent's transactions transaction i has seen.
    let mut seen: Vec<[u64; 2]> = Vec::with_capacity(txns.len());
    let mut need = Vec::with_capacity(txns.len());
    let mut own = [0u64; 2];
    for txn in txns {
        let x = txn["agent"].as_u64().expect("agent") as usize;
        let mut s = [0u64; 2];
        for p in txn["parents"].as_array().expect("parents") {
            let p = &seen[p.as_u64().expect("parent") as usize];
            s = [s[0].max(p[0]), s[1].max(p[1])];
        }
        need.push(s[1 - x]);
        own[x] += 1;
        s[x] = own[x];
        seen.push(s);
    }
    let agents: Vec<usize> = txns
        .iter()
        .map(|t| t["agent"].as_u64().expect("agent") as usize)
        .collect();
    let agent = |i: usize| agents[i];
    let ops: Vec<Op> = txns.iter().map(txn_op).collect();
    let mut queue: [std::collections::VecDeque<usize>; 2] = Default::default();
    for i in 0..txns.len() {
        queue[agent(i)].push_back(i);
    }
    let mut sim = Sim::new(Value::new_document(), 2, true);
    sim.server.record = record;
    let mut made = 0;
    loop {
        // Deliver acks, and the other's edits this agent's next transaction has seen.
        for (a, q) in queue.iter().enumerate() {
            let limit = q.front().map_or(u64::MAX, |&i| need[i]);
            let c = &mut sim.clients[a];
            while match c.inbox.front() {
                Some(ToClient::Ack { .. }) => true,
                Some(ToClient::Op { .. }) => c.seen_others < limit,
                None => false,
            } {
                c.deliver();
            }
        }
        // Of the agents whose state is exactly what their next transaction saw, the one
        // earliest in the trace edits.
        let ready = (0..2)
            .filter_map(|a| queue[a].front().copied())
            .filter(|&i| sim.clients[agent(i)].seen_others == need[i])
            .min();
        if let Some(i) = ready {
            queue[agent(i)].pop_front();
            sim.clients[agent(i)].edit(ops[i].clone());
            made += 1;
            continue;
        }
        // Each waits for the other: send edits in.
        if !(sim.upload(first) || sim.upload(1 - first)) {
            break;
        }
    }
    assert_eq!(
        made,
        txns.len(),
        "every transaction was made on the state its parents name"
    );
    sim.drain();
    sim.assert_converged(0);
    sim
}

fn first_difference(got: &str, want: &str) -> Option<(usize, String, String)> {
    if got == want {
        return None;
    }
    let at = got
        .chars()
        .zip(want.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let ctx = |s: &str| {
        s.chars()
            .skip(at.saturating_sub(20))
            .take(60)
            .collect::<String>()
    };
    Some((at, ctx(got), ctx(want)))
}

#[test]
fn friendsforever_replays_through_client_server_ot() {
    let (got, want) = replay_friendsforever(0);
    assert_eq!(first_difference(&got, &want), None);
}

/// With the other server order every site still converges, but one spot of the trace comes
/// out differently: agent 1 types after a character that agent 0 deletes and retypes over, so
/// both insert into the same hole. Server-ordered OT puts the earlier version first (DESIGN
/// §2); the recording's CRDT ordered by the deleted character. This pins that difference.
#[test]
fn friendsforever_other_server_order_converges_with_one_tie_resolved_the_other_way() {
    let (got, want) = replay_friendsforever(1);
    let (at, got_ctx, _) = first_difference(&got, &want).expect("this order differs");
    assert_eq!(at, 3798);
    assert!(got_ctx.contains("The whole , hh?u"), "{got_ctx}");
    assert_eq!(
        got.chars().count(),
        want.chars().count(),
        "only the order of characters differs"
    );
}
