//! `traces/friendsforever` through the real server with two SDK cores, one per agent, over
//! real WebSockets. The SDK's sans-I/O core is driven step by step (the test decides when each
//! agent receives and sends), which is what makes the schedule exact: an agent edits when it
//! has seen exactly the other agent's transactions its parents name, and when both wait,
//! agent 0's edit goes to the server first (the schedule of `crates/ot/tests/it/traces.rs`).

use std::collections::VecDeque;
use std::io::Read;

use anyhow::{Context, Result, anyhow, bail, ensure};
use montage_client::core::SessionCore;
use montage_client::{Component, Op, Value, path};
use montage_protocol::{ClientMessage, ServerMessage};

use crate::sdk::{OPEN_LIMITS, fast_tempdir};
use crate::{Client, Server};

fn load(name: &str) -> Result<serde_json::Value> {
    let file = format!("{}/../../traces/{name}.json.gz", env!("CARGO_MANIFEST_DIR"));
    let gz = std::fs::read(&file).with_context(|| format!("read {file}"))?;
    let mut s = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut s)?;
    Ok(serde_json::from_str(&s)?)
}

fn txn_op(txn: &serde_json::Value) -> Result<Op> {
    let mut comps = Vec::new();
    for p in txn["patches"]
        .as_array()
        .ok_or_else(|| anyhow!("patches"))?
    {
        let pos = p[0].as_u64().ok_or_else(|| anyhow!("pos"))? as usize;
        let del = p[1].as_u64().ok_or_else(|| anyhow!("del"))? as usize;
        let ins = p[2].as_str().ok_or_else(|| anyhow!("ins"))?;
        if del > 0 {
            comps.push(Component::text_delete(path!["title"], pos, del));
        }
        if !ins.is_empty() {
            comps.push(Component::text_insert(path!["title"], pos, ins));
        }
    }
    Ok(Op::new(comps))
}

/// One agent: an SDK core, its socket, and the server messages read but not yet delivered.
struct Agent {
    core: SessionCore,
    ws: Client,
    inbox: VecDeque<ServerMessage>,
    outbox: Option<ClientMessage>,
    sent_slot: Option<u64>,
    seen_others: u64,
}

impl Agent {
    async fn read_one(&mut self) -> Result<()> {
        let j = self.ws.recv().await?;
        let (m, _) = montage_protocol::decode_server(&j.to_string())?;
        match m {
            ServerMessage::Ack { .. } | ServerMessage::Op { .. } => self.inbox.push_back(m),
            ServerMessage::Error { code, message, .. } => bail!("server error {code:?}: {message}"),
            _ => {}
        }
        Ok(())
    }
    /// The core's flush: what the sim's client puts in its outbox after an edit or an ack.
    fn flush(&mut self) {
        if self.outbox.is_none() {
            self.outbox = self.core.poll_send(&mut self.sent_slot).map(|(m, _)| m);
        }
    }
    fn deliver(&mut self) {
        if let Some(m) = self.inbox.pop_front() {
            if matches!(m, ServerMessage::Op { .. }) {
                self.seen_others += 1;
            }
            self.core.receive(m);
            self.flush();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friendsforever_replays_through_the_real_server_with_two_sdk_cores() -> Result<()> {
    let t = load("friendsforever")?;
    let txns = t["txns"].as_array().ok_or_else(|| anyhow!("txns"))?;
    let want = t["endContent"]
        .as_str()
        .ok_or_else(|| anyhow!("endContent"))?;
    // need[i]: how many of the other agent's transactions transaction i has seen.
    let mut seen: Vec<[u64; 2]> = Vec::with_capacity(txns.len());
    let mut need = Vec::with_capacity(txns.len());
    let mut agent_of = Vec::with_capacity(txns.len());
    let mut own = [0u64; 2];
    let mut ops = Vec::with_capacity(txns.len());
    for txn in txns {
        let x = txn["agent"].as_u64().ok_or_else(|| anyhow!("agent"))? as usize;
        let mut s = [0u64; 2];
        for p in txn["parents"]
            .as_array()
            .ok_or_else(|| anyhow!("parents"))?
        {
            let p = seen[p.as_u64().ok_or_else(|| anyhow!("parent"))? as usize];
            s = [s[0].max(p[0]), s[1].max(p[1])];
        }
        need.push(s[1 - x]);
        own[x] += 1;
        s[x] = own[x];
        seen.push(s);
        agent_of.push(x);
        ops.push(txn_op(txn)?);
    }
    let mut queue: [VecDeque<usize>; 2] = Default::default();
    for (i, &a) in agent_of.iter().enumerate() {
        queue[a].push_back(i);
    }

    let dir = fast_tempdir()?;
    let server = Server::start(dir.path(), OPEN_LIMITS)?;
    crate::sdk::create_session(&server, "ff", "agent0", &["agent1"], Op::new(vec![])).await?;
    let mut agents = Vec::new();
    for (i, user) in ["agent0", "agent1"].iter().enumerate() {
        // TCP_NODELAY, as the SDK's own connection sets it: 26k strictly sequential round trips.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            server.url(&crate::token(user)),
            None,
            true,
        )
        .await?;
        let mut ws = Client { ws };
        let mut core = SessionCore::new("ff", format!("ff-agent{i}"));
        core.set_compose(false); // each transaction is its own version, as in the trace
        let join = core.join_message();
        ws.send(serde_json::to_value(&join)?).await?;
        let joined = ws.recv_type("joined").await?;
        let (m, _) = montage_protocol::decode_server(&joined.to_string())?;
        core.receive(m);
        agents.push(Agent {
            core,
            ws,
            inbox: VecDeque::new(),
            outbox: None,
            sent_slot: None,
            seen_others: 0,
        });
    }

    let mut made = 0usize;
    let mut uploads = 0usize;
    let mut net = std::time::Duration::ZERO;
    loop {
        // Deliver acks, and the other's edits this agent's next transaction has seen.
        for (a, q) in queue.iter().enumerate() {
            let limit = q.front().map_or(u64::MAX, |&i| need[i]);
            let ag = &mut agents[a];
            while match ag.inbox.front() {
                Some(ServerMessage::Ack { .. }) => true,
                Some(ServerMessage::Op { .. }) => ag.seen_others < limit,
                _ => false,
            } {
                ag.deliver();
            }
        }
        let ready = (0..2)
            .filter_map(|a| queue[a].front().copied())
            .filter(|&i| agents[agent_of[i]].seen_others == need[i])
            .min();
        if let Some(i) = ready {
            let a = agent_of[i];
            queue[a].pop_front();
            agents[a].core.edit(ops[i].clone())?;
            agents[a].flush();
            made += 1;
            continue;
        }
        // Both wait: agent 0's edit reaches the server first. Send one edit and wait until
        // its ack and its broadcast are both read, so the server order is exactly this one.
        let Some(a) = (0..2).find(|&a| agents[a].outbox.is_some()) else {
            break;
        };
        let msg = agents[a].outbox.take().context("outbox")?;
        let t0 = std::time::Instant::now();
        agents[a].ws.send(serde_json::to_value(&msg)?).await?;
        uploads += 1;
        let before = agents[a].inbox.len();
        while agents[a].inbox.len() == before {
            agents[a].read_one().await?;
        }
        let other = 1 - a;
        let before = agents[other].inbox.len();
        while agents[other].inbox.len() == before {
            agents[other].read_one().await?;
        }
        net += t0.elapsed();
    }
    ensure!(
        made == txns.len(),
        "made {made} of {} transactions",
        txns.len()
    );
    // Drain: deliver everything left.
    for ag in &mut agents {
        while !ag.inbox.is_empty() {
            ag.deliver();
        }
        ensure!(ag.core.unacked() == 0, "unacked edits left");
    }
    let head = server.get_json("/v1/sessions/ff", "agent0").await?;
    let server_title = head["state"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let title = |c: &SessionCore| {
        c.doc()
            .get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    for ag in &agents {
        ensure!(
            title(&ag.core) == server_title,
            "an agent's replica differs"
        );
    }
    if server_title != want {
        let at = server_title
            .chars()
            .zip(want.chars())
            .take_while(|(a, b)| a == b)
            .count();
        bail!("text differs from endContent at char {at} ({uploads} uploads)");
    }
    eprintln!(
        "friendsforever: {made} transactions, {uploads} uploads, {net:?} waiting on the server"
    );
    Ok(())
}
