use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use montage_media::{Coalescer, Preview, PreviewCache, PreviewFormat, Size, Tier, render};
use serde_json::json;

use crate::helpers::*;

fn preview(version: u64, tier: Tier, len: usize) -> Arc<Preview> {
    Arc::new(Preview {
        version,
        tier,
        size: Size::new(1, 1),
        format: PreviewFormat::Png,
        bytes: vec![0; len],
    })
}

#[test]
fn cache_is_keyed_by_session_version_and_tier() {
    let c = PreviewCache::new(1 << 20);
    assert!(c.insert("s", preview(3, Tier::Good, 10)));
    assert_eq!(c.get("s", 3, Tier::Good).map(|p| p.version), Some(3));
    assert!(c.get("s", 2, Tier::Good).is_none());
    assert!(c.get("s", 3, Tier::Poor).is_none());
    assert!(c.get("t", 3, Tier::Good).is_none());
    // A newer version replaces; an older one is refused.
    assert!(c.insert("s", preview(5, Tier::Good, 20)));
    assert!(!c.insert("s", preview(4, Tier::Good, 20)));
    assert_eq!(c.latest("s", Tier::Good).map(|p| p.version), Some(5));
    assert_eq!((c.len(), c.bytes()), (1, 20));
    c.insert("s", preview(5, Tier::Poor, 5));
    c.remove_session("s");
    assert!(c.is_empty());
    assert_eq!(c.bytes(), 0);
}

#[test]
fn cache_evicts_least_recently_used_past_its_budget() {
    let c = PreviewCache::new(100);
    c.insert("a", preview(1, Tier::Good, 40));
    c.insert("b", preview(1, Tier::Good, 40));
    assert!(c.get("a", 1, Tier::Good).is_some()); // a is now more recent than b
    c.insert("c", preview(1, Tier::Good, 40));
    assert!(c.bytes() <= 100);
    assert!(c.get("b", 1, Tier::Good).is_none());
    assert!(c.get("a", 1, Tier::Good).is_some());
    assert!(c.get("c", 1, Tier::Good).is_some());
    // Larger than the whole budget: not cached at all.
    assert!(!c.insert("d", preview(1, Tier::Good, 101)));
}

#[test]
fn coalescer_keeps_only_the_newest_job() {
    let c = Coalescer::new();
    let mut starts = 0;
    for v in 1..=100u64 {
        if c.submit(v) {
            starts += 1;
        }
    }
    assert_eq!(starts, 1, "one worker for the whole burst");
    assert_eq!(c.take(), Some(100));
    assert_eq!(c.take(), None);
    assert!(!c.has_pending());
    // After the worker stopped, the next submit asks for a new one.
    assert!(c.submit(101));
}

#[test]
fn a_burst_of_100_edits_renders_far_fewer_than_100_times() {
    let a = Arc::new(assets(&[("p", photo(800, 600))]));
    let c = Arc::new(Coalescer::new());
    let renders = Arc::new(AtomicUsize::new(0));
    let rendered: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut workers = Vec::new();
    for version in 1..=100u64 {
        // Each edit moves the layer; the server would submit (version, doc) after each ack.
        let d = doc(
            1920,
            1080,
            json!([image_layer(
                "p",
                version as f64,
                0.0,
                1600.0,
                1000.0,
                json!({"rotation": version})
            )]),
        );
        if c.submit((version, d)) {
            let (c, a, renders, rendered) =
                (c.clone(), a.clone(), renders.clone(), rendered.clone());
            workers.push(std::thread::spawn(move || {
                while let Some((v, d)) = c.take() {
                    let r = render(&d, &*a, Size::new(854, 480)).expect("render");
                    assert_eq!(r.image.width(), 854);
                    renders.fetch_add(1, Ordering::SeqCst);
                    rendered.lock().expect("lock").push(v);
                }
            }));
        }
    }
    for w in workers {
        w.join().expect("worker");
    }
    let n = renders.load(Ordering::SeqCst);
    let seen = rendered.lock().expect("lock").clone();
    assert!(n <= 10, "rendered {n} times: {seen:?}");
    assert_eq!(
        seen.last(),
        Some(&100),
        "the newest version is always rendered"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "versions rendered in order: {seen:?}"
    );
}

#[test]
fn shared_types_cross_threads() {
    // The server keeps these in Arcs shared by async tasks and blocking-pool workers.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<montage_media::Asset>();
    send_sync::<montage_media::MemoryAssets>();
    send_sync::<PreviewCache>();
    send_sync::<Coalescer<(u64, montage_ot::Value)>>();
    send_sync::<Preview>();
    send_sync::<montage_media::MediaError>();
}
