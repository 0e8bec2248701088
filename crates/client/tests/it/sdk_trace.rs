//! `traces/friendsforever` through the real server with two SDK clients, one per agent, over
//! real WebSockets. Both run in the SDK's step-by-step mode (`SessionHandle::hold`): the test
//! decides when each receives and sends, which is what makes the schedule exact: an agent
//! edits when it has seen exactly the other agent's transactions its parents name, and when
//! both wait, agent 0's edit goes to the server first (the schedule of
//! `crates/ot/tests/it/traces.rs`).

use std::collections::VecDeque;
use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use montage_client::{Client, Component, Op, SessionHandle, Value, path};

use montage_testkit::*;

backend_tests!(friendsforever_replays_through_the_real_server_with_two_sdk_clients,);

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

async fn friendsforever_replays_through_the_real_server_with_two_sdk_clients(
    b: Backend,
) -> Result<()> {
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
    let server = Server::start(b, dir.path(), OPEN_LIMITS).await?;
    crate::sdk::create_session(&server, "ff", "agent0", &["agent1"], Op::new(vec![])).await?;
    let url = format!("ws://{}/v1/ws", server.addr);
    let mut clients = Vec::new();
    let mut hs: Vec<SessionHandle> = Vec::new();
    for user in ["agent0", "agent1"] {
        // Each transaction is its own version, as in the trace.
        let c = Client::start(sdk_options(&url, user).compose_pending(false))?;
        let h = c.join("ff").await?;
        h.hold(true);
        clients.push(c);
        hs.push(h);
    }
    let wait = Duration::from_secs(30);
    let mut seen_others = [0u64; 2];
    let mut made = 0usize;
    let mut uploads = 0usize;
    let started = std::time::Instant::now();
    loop {
        // Deliver acks, and the other's edits this agent's next transaction has seen.
        for (a, q) in queue.iter().enumerate() {
            let limit = q.front().map_or(u64::MAX, |&i| need[i]);
            loop {
                match hs[a].held_front() {
                    Some(None) => {}
                    Some(Some(_)) if seen_others[a] < limit => seen_others[a] += 1,
                    _ => break,
                }
                hs[a].deliver_held();
            }
        }
        let ready = (0..2)
            .filter_map(|a| queue[a].front().copied())
            .filter(|&i| seen_others[agent_of[i]] == need[i])
            .min();
        if let Some(i) = ready {
            let a = agent_of[i];
            queue[a].pop_front();
            hs[a].edit(ops[i].clone())?;
            made += 1;
            continue;
        }
        // Both wait: agent 0's edit reaches the server first. Release one send and wait
        // until its ack and its broadcast are both held, so the server order is this one.
        let Some(a) = (0..2).find(|&a| hs[a].has_unsent()) else {
            break;
        };
        let (mine, theirs) = (hs[a].held_len(), hs[1 - a].held_len());
        hs[a].release_one();
        uploads += 1;
        hs[a].wait_held(mine + 1, wait).await.context("ack")?;
        hs[1 - a]
            .wait_held(theirs + 1, wait)
            .await
            .context("broadcast")?;
    }
    ensure!(
        made == txns.len(),
        "made {made} of {} transactions",
        txns.len()
    );
    for h in &hs {
        h.hold(false);
        h.sync(wait).await?;
    }
    let head = server.get_json("/v1/sessions/ff", "agent0").await?;
    let server_title = head["state"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let title = |h: &SessionHandle| {
        h.state()
            .get("title")
            .and_then(Value::as_text)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    for h in &hs {
        ensure!(title(h) == server_title, "an agent's replica differs");
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
        "friendsforever: {made} transactions, {uploads} uploads in {:?}",
        started.elapsed()
    );
    for c in &clients {
        c.close().await;
    }
    Ok(())
}
