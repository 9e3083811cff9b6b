//! Freshness (issue 26): how soon a lone item or webhook comes out of an otherwise idle mesh,
//! and what cutting batches when nothing more is pending costs under a backlog, against the
//! old batching policy in the same run.
//!
//! ```sh
//! cargo build --release --workspace --bins      # the service binaries the bench runs
//! cargo bench -p tributary-e2e --bench freshness [-- --backlog 100000 --probes 200 --rounds 2]
//! ```
//!
//! The five release processes run on the built-in defaults (logs at `warn`). Each round
//! measures two policies, the ETL and the search process restarted for each:
//!
//! - **idle cut** (the default, `etl.cut_when_idle` and `search.cut_when_idle` on): a batch
//!   goes as soon as nothing more is pending for its consumer, and waits to fill (up to
//!   `batch_wait_ms`) only while more is on its way;
//! - **old** (both off): a batch goes when it is full or `batch_wait_ms` (50 ms in the ETL,
//!   100 ms in search) after its first message, as before 2026-12-01.
//!
//! The order alternates from round to round (idle cut first, then old first), so the tables
//! growing over the run do not favour one. For each policy:
//!
//! 1. **Backlog**: with the ETL and search stopped, `--backlog` person items are published on
//!    `connector.items.<instance>`; search is started, then the ETL, and from the moment the
//!    ETL answers `/readyz` the bench times until it has committed (and acked) every item and
//!    until the index holds every one (`search.stats`, polled every 10 ms).
//! 2. **Connector item → `data.*` event**: `--probes` person items of a fresh instance
//!    published one at a time, each timed from the start of its publish until its
//!    `data.PersonCreated` arrives (a core NATS subscription to the event subject), 25 ms
//!    apart so the mesh is idle when each comes. Baseline: the publish until JetStream's ack.
//! 3. **Webhook → searchable**: `--probes` signed Twilio SMS webhooks one at a time, each timed
//!    from the start of its POST until `GET /search` (polled every 2 ms) finds its text; on the
//!    way, when its `data.MessageCreated` arrived. Baseline: the POST until its 2xx.
//!
//! The summary gives, per policy, the rates and percentiles of every round, and the ratios of
//! the idle cut's backlog rates to the old policy's.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use tributary_e2e::figures::{ms, per_second, percentile, spread};
use tributary_e2e::{items, twilio, Servers, ServiceName, Stack};
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::streams::ConsumerKey;

/// Webhooks and items sent before each policy's probes, not counted.
const WARM_UP: usize = 5;
/// The pause between probes, so each finds the mesh idle.
const PAUSE: Duration = Duration::from_millis(25);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    IdleCut,
    Old,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::IdleCut => "idle cut",
            Policy::Old => "old (full or batch_wait_ms)",
        }
    }

    fn cut_when_idle(self) -> bool {
        self == Policy::IdleCut
    }
}

/// What one policy measured in one round.
struct Figures {
    policy: Policy,
    backlog_rows: f64,
    backlog_searchable: f64,
    event: Vec<Duration>,
    event_publish: Vec<Duration>,
    searchable: Vec<Duration>,
    message_event: Vec<Duration>,
    answered: Vec<Duration>,
}

struct Bench {
    stack: Stack,
    webhook_url: String,
    backlog: usize,
    probes: usize,
    indexed: u64,
    webhooks: usize,
}

impl Bench {
    /// Stops the ETL and search and sets `policy` for their next start.
    async fn stop_with(&mut self, policy: Policy) {
        for service in [ServiceName::Etl, ServiceName::Search] {
            self.stack.stop(service).await;
        }
        let cut = policy.cut_when_idle();
        self.stack
            .set("etl.cut_when_idle", cut)
            .set("search.cut_when_idle", cut);
    }

    async fn measure(&mut self, policy: Policy, round: usize) -> Figures {
        self.stop_with(policy).await;
        let tag = format!(
            "{}-{round}",
            if policy.cut_when_idle() {
                "idle"
            } else {
                "old"
            }
        );

        // 1. Backlog.
        let instance = format!("backlog-{tag}");
        self.stack.install_item_source(&instance).await;
        let people = items::people(&instance, "backlog", self.backlog);
        self.stack.mesh().publish_items(&people).await;
        drop(people);
        self.stack.start(ServiceName::Search).await;
        self.stack.start(ServiceName::Etl).await;
        let start = Instant::now();
        let target = self.indexed + self.backlog as u64;
        let mut rows = None;
        let deadline = start + Duration::from_secs(1800);
        let searchable = loop {
            let now = start.elapsed();
            if rows.is_none()
                && self
                    .stack
                    .consumer_settled(ConsumerKey::EtlItems)
                    .await
                    .is_ok()
            {
                rows = Some(now);
            }
            if rows.is_some() && self.stack.indexed().await >= target {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "{instance}: not done in 30 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        self.indexed = target;
        let rows = rows.unwrap();
        assert_eq!(
            self.stack
                .count(&format!(
                    "SELECT count(*) FROM source_record WHERE instance_id = '{instance}'"
                ))
                .await,
            self.backlog as i64,
            "{instance}: every item is a row"
        );

        // 2. Connector item → data.PersonCreated.
        let instance = format!("probe-{tag}");
        self.stack.install_item_source(&instance).await;
        let mut created = self
            .stack
            .watch(EventKind::Data {
                entity: EntityType::Person,
                change: DataChange::Created,
            })
            .await;
        let mut event = Vec::with_capacity(self.probes);
        let mut event_publish = Vec::with_capacity(self.probes);
        for i in 0..(WARM_UP + self.probes) {
            let item = [items::person(&instance, "probe", i)];
            tokio::time::sleep(PAUSE).await;
            let start = Instant::now();
            self.stack.mesh().publish_items(&item).await;
            let stored = start.elapsed();
            created.next_of(&instance, Duration::from_secs(30)).await;
            if i >= WARM_UP {
                event_publish.push(stored);
                event.push(start.elapsed());
            }
        }
        self.indexed += (WARM_UP + self.probes) as u64;

        // 3. Webhook → searchable.
        let mut messages = self
            .stack
            .watch(EventKind::Data {
                entity: EntityType::Message,
                change: DataChange::Created,
            })
            .await;
        let mut searchable_at = Vec::with_capacity(self.probes);
        let mut message_event = Vec::with_capacity(self.probes);
        let mut answered = Vec::with_capacity(self.probes);
        for i in 0..(WARM_UP + self.probes) {
            let word = format!("probe{}", uuid::Uuid::new_v4().simple());
            let text = format!("Latency {word}");
            let sid = format!("SM{:0>32}", self.webhooks);
            self.webhooks += 1;
            let params = twilio::inbound_sms(&sid, "+15550002", &text);
            let (headers, body) = twilio::signed("bench-token", &self.webhook_url, &params);
            tokio::time::sleep(PAUSE).await;
            let start = Instant::now();
            let (status, answer) = self.stack.post(&self.webhook_url, &headers, body).await;
            let post = start.elapsed();
            assert!((200..300).contains(&status), "{status}: {answer}");
            let event_arrived = async {
                loop {
                    let event = messages.next(Duration::from_secs(60)).await;
                    if event.data.to_string().contains(&word) {
                        return start.elapsed();
                    }
                }
            };
            let found = async {
                let deadline = start + Duration::from_secs(60);
                loop {
                    let found = self
                        .stack
                        .search(&[("q", word.as_str()), ("type", "message"), ("limit", "5")])
                        .await;
                    if found["hits"]
                        .as_array()
                        .is_some_and(|hits| hits.iter().any(|h| h["title"] == text.as_str()))
                    {
                        return start.elapsed();
                    }
                    assert!(
                        Instant::now() < deadline,
                        "webhook {i} not searchable in 60 s"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            };
            let (at_event, at_search) = tokio::join!(event_arrived, found);
            if i >= WARM_UP {
                answered.push(post);
                message_event.push(at_event);
                searchable_at.push(at_search);
            }
        }

        Figures {
            policy,
            backlog_rows: per_second(self.backlog, rows),
            backlog_searchable: per_second(self.backlog, searchable),
            event,
            event_publish,
            searchable: searchable_at,
            message_event,
            answered,
        }
    }
}

fn print(f: &mut Figures, round: usize) {
    println!("round {round}, {}:", f.policy.name());
    println!(
        "   backlog: every row committed at {:.0} items/s, every item searchable at {:.0} items/s",
        f.backlog_rows, f.backlog_searchable
    );
    println!(
        "   connector item → data.PersonCreated: {}",
        spread(&mut f.event)
    );
    println!(
        "     baseline, publish → JetStream ack: {}",
        spread(&mut f.event_publish)
    );
    println!("   webhook → searchable: {}", spread(&mut f.searchable));
    println!(
        "     on the way, → data.MessageCreated: {}",
        spread(&mut f.message_event)
    );
    println!("     baseline, POST → 2xx: {}", spread(&mut f.answered));
}

/// The figures the summary gives a range of, each named.
fn summary_lines(f: &Figures) -> Vec<(&'static str, f64)> {
    let p = |sorted: &[Duration], at: f64| percentile(sorted, at).as_secs_f64() * 1000.0;
    vec![
        ("backlog rows/s", f.backlog_rows),
        ("backlog searchable/s", f.backlog_searchable),
        ("item → event p50 ms", p(&f.event, 50.0)),
        ("item → event p99 ms", p(&f.event, 99.0)),
        ("webhook → searchable p50 ms", p(&f.searchable, 50.0)),
        ("webhook → searchable p99 ms", p(&f.searchable, 99.0)),
        ("webhook → data event p99 ms", p(&f.message_event, 99.0)),
        ("POST → 2xx p99 ms", p(&f.answered, 99.0)),
    ]
}

fn flag(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|e| panic!("{name} takes a number, not {v}: {e}"))
        })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backlog = flag(&args, "--backlog", 100_000);
    let probes = flag(&args, "--probes", 200);
    let rounds = flag(&args, "--rounds", 2);
    println!(
        "freshness benchmark: five service processes from {}, {} cores; backlog {backlog}, {probes} probes, {rounds} rounds",
        tributary_e2e::binary_dir().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let mut stack = Stack::on(Servers::shared()).await;
    stack.set("telemetry.log_filter", "warn,tributary_kit::service=info");
    stack.start_all().await;
    stack
        .admin_install(
            "tributary.twilio-sms",
            "sms-bench",
            twilio::config("bench-token"),
        )
        .await;
    stack.admin_enable("sms-bench").await;
    let webhook_url = stack.webhook_url("sms-bench").await;
    let mut bench = Bench {
        stack,
        webhook_url,
        backlog,
        probes,
        indexed: 0,
        webhooks: 0,
    };

    let mut all: Vec<Figures> = Vec::new();
    for round in 1..=rounds {
        let order = if round % 2 == 1 {
            [Policy::IdleCut, Policy::Old]
        } else {
            [Policy::Old, Policy::IdleCut]
        };
        for policy in order {
            let mut figures = bench.measure(policy, round).await;
            print(&mut figures, round);
            all.push(figures);
        }
    }

    println!();
    println!("summary over {rounds} rounds (ranges over the rounds)");
    for policy in [Policy::IdleCut, Policy::Old] {
        println!("   {}:", policy.name());
        let of_policy: Vec<Vec<(&str, f64)>> = all
            .iter()
            .filter(|f| f.policy == policy)
            .map(summary_lines)
            .collect();
        for (line, (name, _)) in of_policy[0].iter().enumerate() {
            let values = of_policy.iter().map(|lines| lines[line].1);
            let lo = values.clone().fold(f64::INFINITY, f64::min);
            let hi = values.fold(f64::NEG_INFINITY, f64::max);
            println!("      {name}: {lo:.1}–{hi:.1}");
        }
    }
    // Each round's ratio, the idle cut's rate over the old policy's in the same round.
    for round in 0..rounds {
        let of = |policy: Policy| {
            all[round * 2..round * 2 + 2]
                .iter()
                .find(|f| f.policy == policy)
                .unwrap()
        };
        let (new, old) = (of(Policy::IdleCut), of(Policy::Old));
        println!(
            "   round {}: backlog idle cut / old: rows {:.3}, searchable {:.3}; webhook → searchable p99 {} against {}; item → event p99 {} against {}",
            round + 1,
            new.backlog_rows / old.backlog_rows,
            new.backlog_searchable / old.backlog_searchable,
            ms(percentile(&new.searchable, 99.0)),
            ms(percentile(&old.searchable, 99.0)),
            ms(percentile(&new.event, 99.0)),
            ms(percentile(&old.event, 99.0)),
        );
    }
}
