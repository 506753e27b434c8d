//! Outcome writes are fenced by the claim token.

use std::time::Duration;

use crate::helpers::claim_due;
use chrono::Utc;
use message_dispatcher::domain::{Outcome, OutcomeKind};
use message_dispatcher::pipeline::{write_outcome, Recorded};

use crate::helpers::spawn_app_with;
use crate::helpers::TestOptions;

fn sent(id: i64, claim_token: i64, provider_message_id: &str) -> Outcome {
    Outcome {
        id,
        claim_token,
        provider: None,
        attempts: Vec::new(),
        segments: 1,
        kind: OutcomeKind::Sent {
            provider_message_id: provider_message_id.to_owned(),
            sent_at: Utc::now(),
        },
    }
}

#[actix_web::test]
async fn a_late_outcome_of_an_expired_claim_never_overwrites_the_later_one() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let id = app.insert_messages(1).await[0];
    let patience = Duration::from_secs(1);

    // Instance a claims with a lease that has already run out when b claims.
    let first = claim_due(&app.db, 1, Duration::ZERO, "a").await.unwrap();
    let second = claim_due(&app.db, 1, Duration::from_secs(60), "b")
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_eq!(second[0].id, id);
    assert_eq!(
        second[0].claim_token,
        first[0].claim_token + 1,
        "every claim bumps the token"
    );
    assert!(
        claim_due(&app.db, 1, Duration::from_secs(60), "c")
            .await
            .unwrap()
            .is_empty(),
        "a live lease is never taken over"
    );

    // a's call returns late, while b's call is still in flight.
    let late = sent(id, first[0].claim_token, "late");
    assert_eq!(
        write_outcome(&app.db, &late, patience).await,
        Recorded::FencedOut
    );
    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let claimed_by = row.claimed_by;
    let provider_message_id = row.provider_message_id;
    assert_eq!(
        (status.as_str(), claimed_by.as_deref(), provider_message_id),
        ("sending", Some("b"), None)
    );

    let retry_by_b = Outcome {
        id,
        claim_token: second[0].claim_token,
        provider: None,
        attempts: Vec::new(),
        segments: 1,
        kind: OutcomeKind::Retry {
            after: Duration::from_secs(30),
            error: "provider answered 503".into(),
        },
    };
    assert_eq!(
        write_outcome(&app.db, &retry_by_b, patience).await,
        Recorded::Written
    );
    assert_eq!(
        write_outcome(&app.db, &late, patience).await,
        Recorded::FencedOut
    );

    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let provider_message_id = row.provider_message_id;
    let attempts = row.attempts;
    assert_eq!(
        (status.as_str(), provider_message_id, attempts),
        ("pending", None, 2)
    );
}

#[actix_web::test]
async fn an_outcome_lands_once_and_a_repeat_is_fenced() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let id = app.insert_messages(1).await[0];
    let claim = claim_due(&app.db, 1, Duration::from_secs(60), "a")
        .await
        .unwrap();
    let outcome = sent(id, claim[0].claim_token, "p-1");

    assert_eq!(
        write_outcome(&app.db, &outcome, Duration::from_secs(1)).await,
        Recorded::Written
    );
    assert_eq!(
        write_outcome(&app.db, &outcome, Duration::from_secs(1)).await,
        Recorded::FencedOut,
        "a sent row is final"
    );
}

#[actix_web::test]
async fn a_deferred_claim_goes_back_to_pending_without_counting_an_attempt() {
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    let id = app.insert_messages(1).await[0];
    let claim = claim_due(&app.db, 1, Duration::from_secs(60), "a")
        .await
        .unwrap();
    assert_eq!(claim[0].attempts, 1);
    let deferred = Outcome {
        id,
        claim_token: claim[0].claim_token,
        provider: None,
        attempts: Vec::new(),
        segments: 1,
        kind: OutcomeKind::Deferred {
            after: Duration::from_secs(5),
        },
    };

    assert_eq!(
        write_outcome(&app.db, &deferred, Duration::from_secs(1)).await,
        Recorded::Written
    );

    let row = crate::helpers::first_row(&app.db).await;
    let status = row.status;
    let attempts = row.attempts;
    let wait = row.due_in;
    assert_eq!((status.as_str(), attempts), ("pending", 0));
    assert!((4.0..=5.0).contains(&wait), "{wait}");
}

#[actix_web::test]
async fn one_outcome_postgresql_refuses_does_not_hold_back_its_batch() {
    use message_dispatcher::pipeline::write_outcomes;
    let app = spawn_app_with(TestOptions::default().var("DISPATCH_AUTOSTART", false)).await;
    app.insert_messages(3).await;
    let claims = claim_due(&app.db, 3, Duration::from_secs(60), "a")
        .await
        .unwrap();
    let mut outcomes: Vec<Outcome> = claims
        .iter()
        .map(|c| sent(c.id, c.claim_token, "p"))
        .collect();
    // A NUL byte: PostgreSQL refuses it in text, and with it the statement.
    outcomes[1].kind = OutcomeKind::Failed {
        error: "bad\0thing".into(),
    };

    let recorded = write_outcomes(&app.db, &outcomes, Duration::from_secs(1), None).await;

    assert_eq!(
        recorded,
        [Recorded::Written, Recorded::GaveUp, Recorded::Written]
    );
    let statuses: Vec<String> = app.statuses().await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(statuses, ["sent", "sending", "sent"]);
}
