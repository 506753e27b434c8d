//! Prometheus metrics.

use crate::helpers::service_vars;
use crate::helpers::{
    create_database, eventually, insert_messages, spawn_app, start_provider, Api,
};
use crate::process::ServiceProcess;

/// The value of a sample line `name{labels} value`, summed over label sets.
fn sample(text: &str, name: &str) -> f64 {
    labelled(text, name, "")
}

/// [`sample`] over the lines whose labels contain `labels`.
pub fn labelled(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split([' ', '{']).next() == Some(name))
        .filter(|line| line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn metrics_count_sends_calls_ticks_and_the_queue() {
    let app = spawn_app().await;
    app.insert_messages(3).await;
    let before = app
        .api
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    let before = String::from_utf8(before.to_vec()).unwrap();

    app.tick().await;
    let mut response = app
        .api
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let after = String::from_utf8(response.body().await.unwrap().to_vec()).unwrap();

    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    // Other tests in this process share the recorder: compare, do not equate.
    assert!(
        sample(&after, "dispatcher_messages_sent_total")
            >= sample(&before, "dispatcher_messages_sent_total") + 2.0
    );
    assert!(
        sample(&after, "dispatcher_segments_sent_total")
            >= sample(&before, "dispatcher_segments_sent_total") + 2.0
    );
    assert!(sample(&after, "dispatcher_provider_call_duration_seconds_count") >= 2.0);
    assert!(sample(&after, "dispatcher_claim_batch_size_count") >= 1.0);
    assert!(sample(&after, "dispatcher_ticks_total") >= 1.0);
    assert!(after.contains("dispatcher_queue_depth{status=\"pending\"}"));
    assert!(after.contains("dispatcher_scheduler_running"));
    assert!(after.contains("# HELP dispatcher_messages_sent_total"));
    // Counters without labels exist before their first event, at 0 in a
    // fresh process (here, maybe counted by another test already).
    for counter in [
        "dispatcher_messages_expired_total",
        "dispatcher_leases_lost_total",
    ] {
        assert!(
            after
                .lines()
                .any(|line| line.starts_with(&format!("{counter} "))),
            "{counter}"
        );
    }
}

#[actix_web::test]
async fn a_stopped_fleet_counts_its_polls_as_empty_ticks_never_as_claimed_ones() {
    let provider = start_provider(None);
    let database_url = create_database().await;
    let service = ServiceProcess::start(&service_vars(
        &database_url,
        &provider,
        &[
            ("DISPATCH_SCOPE", "cluster"),
            ("DISPATCH_AUTOSTART", "false"),
            ("DISPATCH_INTERVAL_MS", "100"),
        ],
    ))
    .await;
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    insert_messages(&db, 2).await;

    let stopped = eventually("a few polls of the stopped fleet", || async {
        let text = service.get_text("/metrics").await;
        (labelled(&text, "dispatcher_ticks_total", r#"result="empty""#) >= 5.0).then_some(text)
    })
    .await;
    assert_eq!(
        labelled(&stopped, "dispatcher_ticks_total", r#"result="claimed""#),
        0.0
    );
    assert_eq!(sample(&stopped, "dispatcher_claim_batch_size_count"), 0.0);

    assert_eq!(service.start().await.0, 200);
    let running = eventually("the claiming tick counted", || async {
        let text = service.get_text("/metrics").await;
        (labelled(&text, "dispatcher_ticks_total", r#"result="claimed""#) == 1.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&running, "dispatcher_claim_batch_size_count"), 1.0);
    eventually("both messages posted", || async {
        (provider.stats().distinct_keys == 2).then_some(())
    })
    .await;
}
