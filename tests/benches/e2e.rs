//! End-to-end figures, with the five services running as separate processes (the release
//! binaries) against the machine's NATS and PostgreSQL, each with its built-in defaults.
//!
//! ```sh
//! cargo build --release --workspace --bins      # the service binaries the bench runs
//! cargo bench -p tributary-e2e [-- <items> [<webhooks>]]   # 20,000 items and 200 webhooks by default
//! MEILISEARCH_URL=http://127.0.0.1:7700 MEILISEARCH_API_KEY=… \
//!     cargo bench -p tributary-e2e -- --backend meilisearch [<items> [<webhooks>]]
//! ```
//!
//! `--backend embedded` (the default) runs the search service on its embedded index;
//! `--backend meilisearch` on the Meilisearch server `MEILISEARCH_URL` names, in a fresh index.
//! Both print the same figures and baselines.
//!
//! 1. Items per second from connector to searchable: `<items>` person items published on
//!    `connector.items.<instance>` (as a connector publishes them, with their message ids),
//!    timed from the first publish until the search index holds every one (`search.stats`);
//!    the moment the ETL has committed every row (it acks an item after its commit) is noted
//!    on the way.
//! 2. Webhook-to-searchable latency: `<webhooks>` signed Twilio SMS webhooks sent one at a
//!    time, each timed from the start of its POST until `GET /search` finds it; p50 and p99.
//!    The baseline in the same run: POST until its 2xx alone.
//! 3. The baseline of 1: the search process stopped, another `<items>` items through the ETL
//!    alone, timed until it has committed every row; the ratio of the two rates.
//!
//! Completion is polled every 10 ms from JetStream (the ETL's consumer) and the search
//! service (`search.stats`), not from PostgreSQL, so the polling does not slow the ETL down;
//! the rows are counted in PostgreSQL once each run is over.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use tributary_e2e::figures::{ms, per_second, percentile};
use tributary_e2e::{items, twilio, Servers, ServiceName, Stack};
use tributary_proto::streams::ConsumerKey;

const WARM_UP: usize = 200;
const WARM_UP_WEBHOOKS: usize = 5;

fn rows_of(instance: &str) -> String {
    format!("SELECT count(*) FROM source_record WHERE instance_id = '{instance}'")
}

/// The times, from the first publish, when publishing ended, when the ETL had committed (and
/// acked) every item, and when the index held `index_target` documents.
struct Run {
    published: Duration,
    rows: Duration,
    done: Duration,
}

/// Publishes `n` persons of `instance` and polls every 10 ms until the ETL has committed
/// them all and, with `index_target`, the index holds that many documents; then checks the
/// rows in PostgreSQL.
async fn run(stack: &Stack, instance: &str, n: usize, index_target: Option<u64>) -> Run {
    stack.install_item_source(instance).await;
    let people = items::people(instance, "bench", n);
    let mesh = stack.mesh().clone();
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        mesh.publish_items(&people).await;
        start.elapsed()
    });
    let mut rows = None;
    let deadline = start + Duration::from_secs(1800);
    loop {
        if rows.is_none()
            && publisher.is_finished()
            && stack.consumer_settled(ConsumerKey::EtlItems).await.is_ok()
        {
            rows = Some(start.elapsed());
        }
        let finished = match (rows, index_target) {
            (Some(_), None) => true,
            (Some(_), Some(target)) => stack.indexed().await >= target,
            (None, _) => false,
        };
        if finished {
            let done = start.elapsed();
            let published = publisher.await.unwrap();
            assert_eq!(
                stack.count(&rows_of(instance)).await,
                n as i64,
                "{instance}: every item is a row"
            );
            return Run {
                published,
                rows: rows.unwrap_or(done),
                done,
            };
        }
        assert!(
            Instant::now() < deadline,
            "{instance}: not done in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map_or("embedded", String::as_str)
        .to_owned();
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let n = numbers.first().copied().unwrap_or(20_000);
    let m = numbers.get(1).copied().unwrap_or(200);
    println!(
        "end-to-end benchmark: five service processes from {}, {} cores; {n} items, {m} webhooks; search backend {backend}",
        tributary_e2e::binary_dir().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut stack = Stack::on(Servers::shared()).await;
    match backend.as_str() {
        "embedded" => {}
        "meilisearch" => {
            let url = std::env::var("MEILISEARCH_URL")
                .expect("--backend meilisearch needs MEILISEARCH_URL (and MEILISEARCH_API_KEY)");
            let key = std::env::var("MEILISEARCH_API_KEY").unwrap_or_default();
            let index = format!("e2e_{}", uuid::Uuid::new_v4().simple());
            stack
                .set("search.meilisearch_url", url)
                .set("search.meilisearch_api_key", key)
                .set("search.index_name", index);
        }
        other => panic!("--backend is embedded or meilisearch, not {other}"),
    }
    // Built-in defaults, but logs at `warn`: the bench measures the pipeline, not its logs
    // (the harness still needs the `Service started.` line).
    stack.set("telemetry.log_filter", "warn,tributary_kit::service=info");
    stack.start_all().await;

    // Warm-up: connections, statements, the index writer.
    let warm = run(&stack, "warmup", WARM_UP, Some(WARM_UP as u64)).await;
    println!("warm-up: {WARM_UP} items searchable in {}", ms(warm.done));

    // 1. Connector to searchable.
    let target = (WARM_UP + n) as u64;
    let e2e = run(&stack, "bench-e2e", n, Some(target)).await;
    let total = stack
        .search(&[("source", "bench-e2e"), ("limit", "1")])
        .await;
    assert_eq!(total["total"], n, "GET /search finds every item");

    // 2. Webhook to searchable.
    stack
        .admin_install(
            "tributary.twilio-sms",
            "sms-bench",
            twilio::config("bench-token"),
        )
        .await;
    stack.admin_enable("sms-bench").await;
    let url = stack.webhook_url("sms-bench").await;
    let mut answered = Vec::with_capacity(m);
    let mut searchable = Vec::with_capacity(m);
    // The first few warm the route, the consumers and the index up, and are not counted.
    for i in 0..(m + WARM_UP_WEBHOOKS) {
        let word = format!("probe{}", uuid::Uuid::new_v4().simple());
        let text = format!("Latency {word}");
        let params = twilio::inbound_sms(&format!("SM{i:0>32}"), "+15550002", &text);
        let (headers, body) = twilio::signed("bench-token", &url, &params);
        let start = Instant::now();
        let (status, answer) = stack.post(&url, &headers, body).await;
        let post = start.elapsed();
        assert!((200..300).contains(&status), "{status}: {answer}");
        let deadline = start + Duration::from_secs(60);
        loop {
            let found = stack
                .search(&[("q", word.as_str()), ("type", "message"), ("limit", "5")])
                .await;
            let hit = found["hits"]
                .as_array()
                .is_some_and(|hits| hits.iter().any(|h| h["title"] == text.as_str()));
            if hit {
                if i >= WARM_UP_WEBHOOKS {
                    answered.push(post);
                    searchable.push(start.elapsed());
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "webhook {i} not searchable in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    answered.sort();
    searchable.sort();

    // 3. The ETL alone.
    stack.stop(ServiceName::Search).await;
    let etl = run(&stack, "bench-etl", n, None).await;

    let e2e_rate = per_second(n, e2e.done);
    let etl_rate = per_second(n, etl.rows);
    println!();
    println!("1. connector items to searchable ({n} persons)");
    println!(
        "   published in {:.2} s; every row committed after {:.2} s ({:.0} items/s); every item searchable after {:.2} s",
        e2e.published.as_secs_f64(),
        e2e.rows.as_secs_f64(),
        per_second(n, e2e.rows),
        e2e.done.as_secs_f64()
    );
    println!("   connector → searchable: {e2e_rate:.0} items/s");
    println!(
        "   baseline, the ETL alone (search stopped): published in {:.2} s, every row committed after {:.2} s: {etl_rate:.0} items/s",
        etl.published.as_secs_f64(),
        etl.rows.as_secs_f64()
    );
    println!(
        "   ratio searchable / ETL alone: {:.2}",
        e2e_rate / etl_rate
    );
    println!();
    println!("2. signed Twilio webhook to searchable ({m} webhooks, one at a time)");
    println!(
        "   POST → searchable: p50 {}, p99 {}, max {}",
        ms(percentile(&searchable, 50.0)),
        ms(percentile(&searchable, 99.0)),
        ms(percentile(&searchable, 100.0))
    );
    println!(
        "   baseline, POST → 2xx: p50 {}, p99 {}, max {}",
        ms(percentile(&answered, 50.0)),
        ms(percentile(&answered, 99.0)),
        ms(percentile(&answered, 100.0))
    );
}
