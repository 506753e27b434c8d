//! Prometheus metrics.

use crate::helpers::spawn_app;

/// The value of a sample line `name{labels} value`, summed over label sets.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.split([' ', '{']).next() == Some(name))
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
    assert!(sample(&after, "dispatcher_provider_call_duration_seconds_count") >= 2.0);
    assert!(sample(&after, "dispatcher_claim_batch_size_count") >= 1.0);
    assert!(sample(&after, "dispatcher_ticks_total") >= 1.0);
    assert!(after.contains("dispatcher_queue_depth{status=\"pending\"}"));
    assert!(after.contains("dispatcher_scheduler_running"));
    assert!(after.contains("# HELP dispatcher_messages_sent_total"));
}
