use super::*;
use crate::store::MemoryStore;
use crate::tasks::connectors::MemorySender;

async fn service() -> (MediaCollaborationService, Arc<MemorySender>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store
        .create_session("s", crate::store::NewSession::new("owner", Role::Viewer))
        .await
        .unwrap();
    let mut cfg = SharingConfig::default();
    cfg.connectors
        .add_url("messenger=http://127.0.0.1:9/m")
        .unwrap();
    cfg.connectors
        .add_url("yapper=http://127.0.0.1:9/y")
        .unwrap();
    cfg.connectors.secret = b"k".to_vec();
    let sender = Arc::new(MemorySender::new());
    let svc = MediaCollaborationService::start(
        store,
        cfg,
        "http://m.example/".into(),
        sender.clone(),
        None,
    )
    .unwrap();
    (svc, sender)
}

fn code(r: Result<impl std::fmt::Debug>) -> ErrorCode {
    match r {
        Err(Error::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn award_rules() {
    let (svc, _) = service().await;
    let spot = RecognitionType::CommunitySpotlight;
    assert_eq!(
        code(
            svc.award(&Principal::new("owner", None), "s", "owner", spot)
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            svc.award(&Principal::new("bob", None), "s", "carol", spot)
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            svc.award(
                &Principal::new("owner", None),
                "s",
                "bob",
                RecognitionType::AchievementBadge
            )
            .await
        ),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(
            svc.award(&Principal::new("owner", None), "nope", "bob", spot)
                .await
        ),
        ErrorCode::NotFound
    );
    let a = svc
        .award(&Principal::new("owner", None), "s", "bob", spot)
        .await
        .unwrap();
    let b = svc
        .award(&Principal::new("owner", None), "s", "bob", spot)
        .await
        .unwrap();
    assert_eq!((a.id.clone(), a.durable), (b.id, true));
    assert_eq!(svc.db().awards(Some("s"), None).await.unwrap().len(), 1);
    // Outside a scope there is no caller.
    assert!(MediaCollaborationService::award_recognition("s", "bob", spot).is_err());
    svc.shutdown().await;
}

/// More contributions at once than any queue would hold: every one is counted.
#[tokio::test]
async fn a_burst_of_contributions_is_counted_whole() {
    let (svc, _) = service().await;
    for i in 0..20_000 {
        let user = if i % 2 == 0 { "bob" } else { "carol" };
        svc.record_contribution("s", user, ContributionKind::EditAccepted);
    }
    svc.shutdown().await; // drains the recorder
    let c = svc.db().contributions(Some("s"), None).await.unwrap();
    assert_eq!(c.iter().map(|c| c.count).sum::<u64>(), 20_000, "{c:?}");
    assert_eq!(c.len(), 2);
}

#[tokio::test]
async fn badges_once_from_contributions() {
    let (svc, _) = service().await;
    for _ in 0..3 {
        svc.record_contribution("s", "bob", ContributionKind::EditAccepted);
    }
    svc.record_contribution("s", "bob", ContributionKind::SuggestionAccepted);
    svc.shutdown().await; // drains the recorder
    let awards = svc.db().awards(Some("s"), Some("bob")).await.unwrap();
    let mut badges: Vec<_> = awards.iter().filter_map(|a| a.badge.clone()).collect();
    badges.sort();
    assert_eq!(badges, ["first_edit", "good_suggestion"]);
    let c = svc
        .db()
        .contributions(Some("s"), Some("bob"))
        .await
        .unwrap();
    assert_eq!(c.iter().map(|c| c.count).sum::<u64>(), 4);
}

#[tokio::test]
async fn share_checks_every_recipient_first() {
    let (svc, _) = service().await;
    let dm = Recipient::DirectMessage {
        user: "bob".into(),
        message: None,
    };
    let allat = Recipient::SocialPost {
        network: "allat".into(),
        message: None,
    };
    // Allat has no URL: nothing at all is created.
    let owner = Principal::new("owner", None);
    let r = svc.share(&owner, "s", &[dm.clone(), allat], None).await;
    assert_eq!(code(r), ErrorCode::NotSupported);
    assert!(svc.db().session_tasks("s", 10).await.unwrap().is_empty());
    let public_editor = svc
        .create_invite(
            &Principal::new("owner", None),
            "s",
            Role::Editor,
            None,
            None,
            None,
        )
        .await;
    assert_eq!(code(public_editor), ErrorCode::Forbidden);
    let t = svc.share(&owner, "s", &[dm], Some("k")).await.unwrap();
    assert_eq!(t[0].kind, "share.direct_message");
    let body: Json = serde_json::from_str(&t[0].payload).unwrap();
    assert_eq!(
        body["body"]["preview_url"],
        "http://m.example/v1/sessions/s/preview"
    );
    svc.shutdown().await;
}
