//! The metrics as the real tools see them: `promtool check metrics` on the
//! `/metrics` text, `promtool check rules` and `promtool test rules` on
//! config/prometheus, and a real Prometheus server scraping the running
//! service, loading the alert rules and answering every query of the
//! Grafana dashboard. The tools come from scripts/test (`PROMTOOL`,
//! `PROMETHEUS`); without them each test says SKIPPED and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::helpers::{create_database, eventually, insert_messages, service_vars, start_provider};
use crate::process::{free_port, ServiceProcess};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

/// `name` from the variable scripts/test sets, else from PATH.
fn tool(variable: &str, name: &str) -> Option<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(name), PathBuf::from);
    let found = Command::new(&path).arg("--version").output();
    match found {
        Ok(output) if output.status.success() => Some(path),
        _ => {
            eprintln!("SKIPPED: {name} is not installed (scripts/test installs it)");
            None
        }
    }
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Option<(bool, String)> {
    let mut child = Command::new(tool("PROMTOOL", "promtool")?)
        .args(args)
        .current_dir(format!("{CONFIG}/prometheus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(&mut { input }, text.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), printed))
}

/// Every PromQL expression of the Grafana dashboard, with Grafana's rate
/// window made a plain duration.
fn dashboard_queries() -> Vec<String> {
    let path = format!("{CONFIG}/grafana/message-dispatcher.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let queries: Vec<String> = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| {
            target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5m")
        })
        .collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// A service that sent `count` messages, with metrics to scrape.
async fn service_that_sent(count: usize) -> (ServiceProcess, mock_provider::MockProvider) {
    let provider = start_provider(None);
    let database_url = create_database().await;
    let vars = [
        ("DISPATCH_INTERVAL_MS", "50"),
        ("DISPATCH_BATCH_SIZE", "10"),
    ];
    let service = ServiceProcess::start(&service_vars(&database_url, &provider, &vars)).await;
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    insert_messages(&db, count).await;
    eventually("every message sent", || async {
        (provider.stats().distinct_keys == count as u64).then_some(())
    })
    .await;
    (service, provider)
}

#[actix_web::test]
async fn promtool_finds_nothing_to_lint_in_the_metrics_text() {
    if tool("PROMTOOL", "promtool").is_none() {
        return;
    }
    let (service, _provider) = service_that_sent(3).await;
    let text = service.get_text("/metrics").await;
    assert!(text.contains("dispatcher_messages_sent_total 3"), "{text}");
    // Counters exist at 0 before their first event: a failure ratio has a
    // denominator, a rate a series.
    assert!(
        text.contains("dispatcher_messages_failed_total 0"),
        "{text}"
    );
    let (ok, printed) = promtool(&["check", "metrics"], Some(&text)).unwrap();
    assert!(ok && printed.trim().is_empty(), "{printed}");
}

#[test]
fn the_alert_rules_are_valid_and_each_fires_in_its_unit_test() {
    let Some((ok, printed)) = promtool(&["check", "rules", "alerts.yml"], None) else {
        return;
    };
    assert!(ok, "{printed}");
    let (ok, printed) = promtool(&["test", "rules", "alerts.test.yml"], None).unwrap();
    assert!(ok, "{printed}");
    // The compose file's Prometheus, which loads them.
    let (ok, printed) = promtool(&["check", "config", "prometheus.yml"], None).unwrap();
    assert!(ok, "{printed}");
    // Every alert of the file has a test that fires it.
    let rules = std::fs::read_to_string(format!("{CONFIG}/prometheus/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(format!("{CONFIG}/prometheus/alerts.test.yml")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!(
                "alertname: {alert}\n        exp_alerts:\n          - "
            )),
            "{alert} never fires in alerts.test.yml"
        );
    }
}

/// A Prometheus server on a free port, scraping `target` every second, with
/// the alert rules loaded; killed on drop.
struct Prometheus {
    child: Child,
    address: String,
    dir: PathBuf,
}

impl Prometheus {
    fn start(binary: &Path, target: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("prometheus-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {CONFIG}/prometheus/alerts.yml\n\
             scrape_configs:\n  - job_name: message-dispatcher\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new(binary)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Prometheus {
            child,
            address,
            dir,
        }
    }

    /// `GET /api/v1/<path>`; the JSON answer, or None while it does not
    /// answer.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let mut response = awc::Client::default()
            .get(format!("http://{}/api/v1/{path}", self.address))
            .query(&query)
            .ok()?
            .send()
            .await
            .ok()?;
        response.json::<Value>().limit(1 << 22).await.ok()
    }

    /// The single value `query` answers now, once it answers one.
    async fn value(&self, query: &str) -> Option<f64> {
        let answer = self.api("query", &[("query", query)]).await?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[actix_web::test]
async fn a_real_prometheus_scrapes_the_service_and_answers_the_dashboard() {
    let Some(binary) = tool("PROMETHEUS", "prometheus") else {
        return;
    };
    let (service, _provider) = service_that_sent(4).await;
    let target = service.address.trim_start_matches("http://");
    let prometheus = Prometheus::start(&binary, target);
    let query = r#"sum(dispatcher_messages_sent_total{job="message-dispatcher"})"#;
    eventually("Prometheus to scrape the sent counter", || async {
        (prometheus.value(query).await? == 4.0).then_some(())
    })
    .await;
    assert_eq!(
        prometheus.value(r#"up{job="message-dispatcher"}"#).await,
        Some(1.0)
    );
    assert_eq!(prometheus.value("dispatcher_postgres_up").await, Some(1.0));

    // The alert rules are loaded, and none fires on a healthy service.
    let rules = eventually("the alert rules evaluated", || async {
        let rules = prometheus.api("rules", &[]).await?;
        let loaded = rules["data"]["groups"][0]["rules"].as_array()?.clone();
        loaded
            .iter()
            .all(|rule| rule["health"] == "ok")
            .then_some(loaded)
    })
    .await;
    assert_eq!(rules.len(), 7, "{rules:?}");
    for rule in &rules {
        assert_eq!(rule["state"], "inactive", "{rule}");
    }

    // Every query of the dashboard is one Prometheus accepts.
    for query in dashboard_queries() {
        let answer = prometheus.api("query", &[("query", &query)]).await.unwrap();
        assert_eq!(answer["status"], "success", "{query}: {answer}");
    }
}

/// The `dispatcher_*` names in `text`, histogram series named by their
/// histogram.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let name = regex::Regex::new(r"dispatcher_[a-z_]+").unwrap();
    name.find_iter(text)
        .map(|found| {
            let found = found.as_str();
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| found.strip_suffix(suffix))
                .unwrap_or(found)
                .to_owned()
        })
        .collect()
}

#[test]
fn the_dashboard_and_the_alerts_use_only_metrics_the_service_exports_and_documents() {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let exported = metric_names(&read("src/telemetry.rs"));
    let documented = metric_names(&read("docs/operations.md"));
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/operations.md: {undocumented:?}"
    );
    let mut used = metric_names(&dashboard_queries().join("\n"));
    used.extend(metric_names(&read("config/prometheus/alerts.yml")));
    let strangers: Vec<_> = used.difference(&exported).collect();
    assert!(
        strangers.is_empty(),
        "used but never exported: {strangers:?}"
    );
}
