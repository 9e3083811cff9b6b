//! Ingest benchmark: how fast the ETL turns person items into rows and published events,
//! against two baselines measured in the same run on an identical table.
//!
//! `cargo bench -p tributary-etl --bench ingest [-- <items>]` (100,000 items by default),
//! against the machine's NATS and PostgreSQL, in a database and stream prefix of its own that
//! are removed afterwards.
//!
//! 1. The ETL on a backlog: the items are published to `connector.items.bench` first (as after
//!    a connector's first sync, or while the ETL was down); timed from the ETL's start until
//!    every item is acked (acked only after its row commits) and every event is in the data
//!    stream. This is the ETL's own throughput, the figure set against the baselines.
//! 2. The ETL live: the same, with the items published while it runs, timed from the first
//!    publish; publishing takes the same two cores.
//! 3. `COPY` of the same normalised rows into a copy of the `person` table: the ceiling. It
//!    runs three times, into three fresh tables, and the median counts.
//! 4. One `INSERT … ON CONFLICT` and one awaited JetStream publish per item: how a
//!    straightforward design does it.
//!
//! `ETL_BATCH_SIZE` and `ETL_CONCURRENT_BATCHES` set the ETL's knobs for a run.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::Connection;
use tributary_etl::normalise::{EntityFields, Normaliser};
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::{ConsumerKey, StreamKey};

fn items(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            serde_json::to_vec(&json!({
                "instance_id": "bench",
                "entity_type": "person",
                "external_id": format!("person-{i}"),
                "source_modified_at": "2026-01-01T00:00:00Z",
                "data": {
                    "display_name": format!(" Person  {i} "),
                    "given_name": "Person",
                    "family_name": format!("{i}"),
                    "emails": [format!("Person.{i}@Example.org")],
                    "organization": "Bench Corp",
                },
                "raw": {"id": i},
            }))
            .unwrap_or_default()
        })
        .collect()
}

/// The service allocates many small strings and JSON values per item; mimalloc serves them
/// faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds used so far by this process, every `postgres` process and every `nats-server`
/// process, from Linux's /proc (in USER_HZ ticks, 100 a second); `None` elsewhere.
fn cpu_seconds() -> Option<[f64; 3]> {
    let ticks = |stat: &str| -> Option<(String, f64)> {
        let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_owned();
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
        let used: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some((name, used / 100.0))
    };
    let own = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1;
    let (mut postgres, mut nats) = (0.0, 0.0);
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        match ticks(&stat) {
            Some((name, used)) if name == "postgres" => postgres += used,
            Some((name, used)) if name.starts_with("nats-server") => nats += used,
            _ => {}
        }
    }
    Some([own, postgres, nats])
}

/// One run of the ETL over `payloads` in an environment of its own. With `backlog`, the items
/// are in the stream before the ETL starts and the clock starts with it; otherwise the clock
/// starts with the first publish. Returns the time until every item is acked and every event
/// is published.
async fn run_etl(
    payloads: &[Vec<u8>],
    backlog: bool,
) -> anyhow::Result<(Duration, Option<[f64; 3]>)> {
    let n = payloads.len();
    let mut env = TestEnv::new().await;
    // The ETL's knobs, to try other settings: `ETL_BATCH_SIZE=2000 cargo bench …`.
    let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    if let Some(size) = knob("ETL_BATCH_SIZE") {
        env.config.etl.batch_size = size;
    }
    if let Some(batches) = knob("ETL_CONCURRENT_BATCHES") {
        env.config.etl.concurrent_batches = batches;
    }
    env.config.etl.max_ack_pending = env
        .config
        .etl
        .max_ack_pending
        .max((env.config.etl.batch_size * env.config.etl.concurrent_batches * 2) as i64);
    let subjects = env.subjects();
    let js = async_nats::jetstream::new(env.nats().await);
    tributary_kit::nats::provision_streams(&js, &subjects).await?;
    let subject = subjects.connector_items("bench");
    let publish_all = || async {
        // Acks are awaited a window at a time: the client caps the acks it keeps in flight.
        for window in payloads.chunks(1000) {
            let mut acks = Vec::with_capacity(window.len());
            for payload in window {
                acks.push(js.publish(subject.clone(), payload.clone().into()).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        anyhow::Ok(())
    };
    if backlog {
        publish_all().await?;
    }
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let runtime = tributary_etl::build(env.config.clone()).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(runtime.run_until_stopped(async {
        let _ = stopped.await;
    }));
    if !backlog {
        publish_all().await?;
    }
    let items = js
        .get_stream(StreamKey::ConnectorItems.name(&subjects))
        .await?;
    let mut events = js.get_stream(StreamKey::DataEvents.name(&subjects)).await?;
    let mut acked = false;
    loop {
        if !acked {
            let mut consumer: async_nats::jetstream::consumer::PullConsumer = items
                .get_consumer(ConsumerKey::EtlItems.durable_name())
                .await
                .map_err(|e| anyhow::anyhow!("the ETL's consumer: {e}"))?;
            let info = consumer.info().await?;
            acked = info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence as usize >= n;
        }
        if acked && events.info().await?.state.messages as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    // Before the ETL's connections close, so that their backends are still counted.
    let cpu = cpu_before
        .zip(cpu_seconds())
        .map(|(before, after)| [0, 1, 2].map(|i| after[i] - before[i]));
    let _ = stop.send(());
    service.await??;
    let pool = env.pool().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM person")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(rows as usize == n, "{rows} rows for {n} items");
    pool.close().await;
    Ok((took, cpu))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = tributary_kit::testing::count_argument(100_000);
    let payloads = items(n);
    let defaults = TestEnv::new().await.config.etl.clone();
    println!(
        "ingest benchmark: {n} person items, batches of {} ({} at a time)",
        std::env::var("ETL_BATCH_SIZE").unwrap_or(defaults.batch_size.to_string()),
        std::env::var("ETL_CONCURRENT_BATCHES").unwrap_or(defaults.concurrent_batches.to_string()),
    );

    // 1 and 2. The ETL.
    let (backlog, cpu) = run_etl(&payloads, true).await?;
    let (live, _) = run_etl(&payloads, false).await?;

    // The same rows, normalised as the ETL does it, for the baselines.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = async_nats::jetstream::new(env.nats().await);
    tributary_kit::nats::provision_streams(&js, &subjects).await?;
    let subject = subjects.connector_items("bench");
    // The same schema as the ETL's, for the tables the baselines copy.
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database).await?;
    let region = phonenumber::country::Id::US;
    let normaliser = Normaliser::new(subjects.clone(), region);
    let mut people = Vec::with_capacity(n);
    for payload in &payloads {
        let item = normaliser.normalise(normaliser.decode(&subject, payload)?)?;
        if let Some(EntityFields::Person(p)) = item.fields {
            people.push(p);
        }
    }

    // 3. COPY, three times.
    let mut csv = String::new();
    for p in &people {
        let emails = format!("{{{}}}", p.emails.join(","));
        csv.push_str(&format!(
            "{},\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",{}\n",
            uuid::Uuid::now_v7(),
            p.display_name,
            p.given_name.as_deref().unwrap_or_default(),
            p.family_name.as_deref().unwrap_or_default(),
            emails,
            p.organization.as_deref().unwrap_or_default(),
            "{}",
        ));
    }
    let mut conn = sqlx::PgConnection::connect_with(&tributary_kit::db::connect_options(
        &env.config.database,
        &env.database,
    ))
    .await?;
    let mut copies = Vec::new();
    for run in 0..3 {
        let table = format!("bench_copy_{run}");
        sqlx::query(&format!("CREATE TABLE {table} (LIKE person INCLUDING ALL)"))
            .execute(&mut conn)
            .await?;
        sqlx::query("CHECKPOINT").execute(&mut conn).await?;
        let started = Instant::now();
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {table} (id, display_name, given_name, family_name, emails, organization, extra) \
                 FROM STDIN (FORMAT csv)"
            ))
            .await?;
        copy.send(csv.as_bytes()).await?;
        let copied = copy.finish().await?;
        copies.push(started.elapsed());
        anyhow::ensure!(copied as usize == n, "COPY wrote {copied} rows");
    }
    copies.sort();
    let copy_time = copies[1];

    // 4. One INSERT … ON CONFLICT and one publish per item.
    sqlx::query("CREATE TABLE bench_naive (LIKE person INCLUDING ALL)")
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let event_subject = subjects.qualify("data.BenchPersonCreated");
    for p in &people {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO bench_naive (id, display_name, given_name, family_name, emails, organization) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
             display_name = EXCLUDED.display_name, given_name = EXCLUDED.given_name, \
             family_name = EXCLUDED.family_name, emails = EXCLUDED.emails, \
             organization = EXCLUDED.organization, updated_at = now()",
        )
        .bind(id)
        .bind(&p.display_name)
        .bind(&p.given_name)
        .bind(&p.family_name)
        .bind(&p.emails)
        .bind(&p.organization)
        .execute(&mut conn)
        .await?;
        let event = serde_json::to_vec(&json!({"id": id, "data": p}))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.to_string().as_str());
        js.publish_with_headers(event_subject.clone(), headers, event.into())
            .await?
            .await
            .context("publish")?;
    }
    let naive_time = started.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (etl_rate, live_rate, copy_rate, naive_rate) =
        (rate(backlog), rate(live), rate(copy_time), rate(naive_time));
    println!(
        "  ETL on a backlog (rows, outbox, events published): {etl_rate:>7.0} items/s ({:.2} s)",
        backlog.as_secs_f64()
    );
    println!(
        "  ETL live, items published meanwhile:               {live_rate:>7.0} items/s ({:.2} s)",
        live.as_secs_f64()
    );
    println!(
        "  COPY of the same rows (ceiling, median of 3):      {copy_rate:>7.0} rows/s ({:.2} s; runs {})",
        copy_time.as_secs_f64(),
        copies
            .iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  INSERT … ON CONFLICT + publish per item:           {naive_rate:>7.0} items/s ({:.2} s)",
        naive_time.as_secs_f64()
    );
    if let Some([etl, postgres, nats]) = cpu {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "  CPU on a backlog: ETL {etl:.2} s, PostgreSQL {postgres:.2} s, NATS {nats:.2} s \
             ({:.2} cores of {cores} on average)",
            (etl + postgres + nats) / backlog.as_secs_f64(),
        );
        // Half of COPY's rate leaves this many CPU-seconds for all three, however they share.
        let budget = 2.0 * copy_time.as_secs_f64() * cores as f64;
        println!(
            "  half of COPY's rate would leave {budget:.2} CPU-seconds for the {n} items on \
             {cores} cores; this run spent {:.2}",
            etl + postgres + nats
        );
    }
    println!("  ETL / COPY:       {:.2}", etl_rate / copy_rate);
    println!("  ETL / per-item:   {:.2}", etl_rate / naive_rate);
    println!("  live / COPY:      {:.2}", live_rate / copy_rate);
    conn.close().await?;
    pool.close().await;
    Ok(())
}
