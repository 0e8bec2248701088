use super::*;

#[test]
fn warnings_header_is_printable_and_bounded() {
    let w = vec![
        Warning::MissingAsset {
            layer: "l\n\u{e9}".into(),
            asset: "a".into(),
        };
        500
    ];
    let h = warnings_header(&w);
    assert!(h.starts_with("missing_asset layer=l?? asset=a; "));
    assert!(h.len() <= MAX_WARNINGS_HEADER);
    assert!(HeaderValue::from_str(&h).is_ok());
}

fn chunked(n: usize, size: usize) -> Body {
    let chunks = (0..n).map(move |_| Ok::<_, std::io::Error>(vec![7u8; size]));
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn undeclared_bodies_are_cut_at_the_limit() {
    let ok = read_limited(chunked(4, 250), 1000, 0).await;
    assert!(matches!(ok, Ok(b) if b.len() == 1000));
    let over = read_limited(chunked(5, 250), 1000, 0).await;
    assert!(matches!(over, Err(AppError(ErrorCode::TooLarge, _))));
    // An endless body is refused after the limit, not read to its end.
    let endless = Body::from_stream(futures_util::stream::repeat_with(|| {
        Ok::<_, std::io::Error>(vec![0u8; 4096])
    }));
    let r = read_limited(endless, 1 << 20, 0).await;
    assert!(matches!(r, Err(AppError(ErrorCode::TooLarge, _))));
}

#[test]
fn temp_copies_stay_within_their_budget_and_delete_evicted_files() {
    let copies = TempCopies::new(100);
    let file = |n: usize| temp_file("montage-test-", &vec![1u8; n]).expect("temp file");
    let a = copies.insert("a", file(40), 40).to_path_buf();
    let b = copies.insert("b", file(40), 40).to_path_buf();
    assert!(copies.get("a").is_some(), "a is now the most recently used");
    // c needs room: b, the least recently used, goes and its file with it.
    let c = copies.insert("c", file(40), 40).to_path_buf();
    assert!(copies.get("b").is_none());
    assert!(!b.exists(), "an evicted copy is deleted");
    assert!(a.exists() && c.exists());
    assert_eq!(copies.0.bytes(), 80);
    // A copy still being read outlives its eviction, then is deleted.
    let held = copies.get("a").expect("a");
    copies.insert("d", file(90), 90);
    assert!(copies.get("a").is_none() && copies.get("c").is_none());
    assert!(a.exists() && !c.exists());
    drop(held);
    assert!(!a.exists());
    assert_eq!(copies.0.bytes(), 90);
    // Larger than the whole budget: used, not kept.
    let big = copies.insert("e", file(101), 101);
    assert!(big.exists() && copies.get("e").is_none());
    assert_eq!(copies.0.bytes(), 90);
    // A cached copy is not read from the store again.
    let blobs = crate::media::blobs::MemoryBlobStore::default();
    blobs.put("x", b"video").expect("put");
    let first = copies.get_or_copy(&blobs, "x").expect("copy");
    blobs.delete("x").expect("delete");
    let again = copies.get_or_copy(&blobs, "x").expect("cached");
    assert_eq!(first.to_path_buf(), again.to_path_buf());
    assert_eq!(std::fs::read(&*again).expect("read"), b"video");
    assert!(copies.get_or_copy(&blobs, "y").is_none());
}

#[test]
fn media_errors_map_to_wire_codes() {
    assert!(matches!(
        media_error(MediaError::UnknownFormat),
        AppError(ErrorCode::BadRequest, _)
    ));
    assert!(matches!(
        media_error(MediaError::TooLarge { bytes: 2, limit: 1 }),
        AppError(ErrorCode::TooLarge, _)
    ));
    assert!(matches!(
        media_error(MediaError::Store { reason: "disk".into() }),
        AppError(ErrorCode::Internal, m) if m == "internal error"
    ));
}
