//! The NATS fan-out bus against the real NATS server: a node hears only the sessions it watches.
//! Needs `MONTAGE_TEST_NATS_URL` (`.ci/run` sets it); without it the test says so loudly.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use media_services::bus::{Bus, BusEvent, NatsBus};

use crate::harness::test_nats_url;

fn relay(session: &str, frame: &str) -> BusEvent {
    BusEvent::Relay {
        session: session.to_owned(),
        presence: false,
        frame: frame.to_owned(),
    }
}

#[tokio::test]
async fn a_node_hears_only_the_sessions_it_watches() -> Result<()> {
    let Some(url) = test_nats_url("bus::a_node_hears_only_the_sessions_it_watches") else {
        return Ok(());
    };
    // Ids with characters a NATS subject token may not hold, and unique per run.
    let run = media_services::clock::random_node_id();
    let a = NatsBus::connect(&url, &run).await?;
    let b = NatsBus::connect(&url, &run).await?;
    // Another cluster on the same NATS server hears nothing of this one.
    let other = NatsBus::connect(&url, &format!("other {run}")).await?;
    let mut ro = other.take_events().context("events taken twice")?;
    let mut rb = b.take_events().context("events taken twice")?;
    let (s1, s2) = (format!("s 1.*>{run}"), format!("s.2>{run}"));

    b.watch(&s1).await;
    b.watch(&s1).await; // counted: one unwatch keeps it
    other.watch(&s1).await;
    a.publish(relay(&s2, "not watched"));
    a.publish(relay(&s1, "first"));
    let got = tokio::time::timeout(Duration::from_secs(5), rb.recv()).await?;
    ensure!(got == Some(relay(&s1, "first")), "got {got:?}");

    b.unwatch(&s1);
    a.publish(relay(&s1, "still watched once"));
    let got = tokio::time::timeout(Duration::from_secs(5), rb.recv()).await?;
    ensure!(got == Some(relay(&s1, "still watched once")), "got {got:?}");

    b.unwatch(&s1);
    // Unsubscribing is asynchronous at the server: a round trip through it settles it.
    b.watch(&s2).await;
    a.publish(relay(&s1, "no longer watched"));
    a.publish(relay(&s2, "second"));
    let got = tokio::time::timeout(Duration::from_secs(5), rb.recv()).await?;
    ensure!(got == Some(relay(&s2, "second")), "got {got:?}");
    ensure!(
        tokio::time::timeout(Duration::from_millis(300), rb.recv())
            .await
            .is_err(),
        "an event of an unwatched session arrived"
    );
    ensure!(
        ro.try_recv().is_err(),
        "a node of another cluster heard this cluster's session"
    );
    Ok(())
}
