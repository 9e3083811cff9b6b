//! Ingest benchmark: how fast the ETL turns person items into rows and published events,
//! against two baselines measured in the same run on an identical table.
//!
//! `cargo bench -p tributary-etl --bench ingest [-- <items>]` (100,000 items by default),
//! against the machine's NATS and PostgreSQL, in a database and stream prefix of its own that
//! are removed afterwards.
//!
//! 1. The ETL: items published to `connector.items.bench`; timed from the first publish until
//!    every event is in the data stream (each event is published only after its row commits).
//! 2. `COPY` of the same normalised rows into a copy of the `person` table: the ceiling.
//! 3. One `INSERT … ON CONFLICT` and one awaited JetStream publish per item: how a
//!    straightforward design does it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::Connection;
use tributary_etl::normalise::{EntityFields, Normaliser};
use tributary_kit::testing::TestEnv;
use tributary_proto::streams::StreamKey;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
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
    let payloads = items(n);
    println!(
        "ingest benchmark: {n} person items, batches of {} ({} at a time)",
        env.config.etl.batch_size, env.config.etl.concurrent_batches
    );

    // 1. The ETL.
    let runtime = tributary_etl::build(env.config.clone()).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(runtime.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let subject = subjects.connector_items("bench");
    let started = Instant::now();
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
    let published = started.elapsed();
    let mut events = js.get_stream(StreamKey::DataEvents.name(&subjects)).await?;
    let pool = env.pool().await;
    let mut committed = None;
    loop {
        if committed.is_none() {
            let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM person")
                .fetch_one(&pool)
                .await?;
            if rows as usize >= n {
                committed = Some(started.elapsed());
            }
        }
        if events.info().await?.state.messages as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let etl = started.elapsed();
    let committed = committed.unwrap_or(etl);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM person")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(rows as usize == n, "{rows} rows for {n} items");
    let _ = stop.send(());
    service.await??;

    // The same rows, normalised as the ETL does it, for the baselines.
    let region = phonenumber::country::Id::US;
    let normaliser = Normaliser::new(subjects.clone(), region);
    let mut people = Vec::with_capacity(n);
    for payload in &payloads {
        let item = normaliser.normalise(normaliser.decode(&subject, payload)?)?;
        if let Some(EntityFields::Person(p)) = item.fields {
            people.push(p);
        }
    }
    sqlx::query("CREATE TABLE bench_copy (LIKE person INCLUDING ALL)")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE bench_naive (LIKE person INCLUDING ALL)")
        .execute(&pool)
        .await?;

    // 2. COPY.
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
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY bench_copy (id, display_name, given_name, family_name, emails, organization, extra) \
             FROM STDIN (FORMAT csv)",
        )
        .await?;
    copy.send(csv.as_bytes()).await?;
    let copied = copy.finish().await?;
    let copy_time = started.elapsed();
    anyhow::ensure!(copied as usize == n, "COPY wrote {copied} rows");

    // 3. One INSERT … ON CONFLICT and one publish per item.
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
    let (etl_rate, copy_rate, naive_rate) = (rate(etl), rate(copy_time), rate(naive_time));
    println!(
        "  publishing the items took {:.2} s",
        published.as_secs_f64()
    );
    println!(
        "  every row committed after {:.2} s",
        committed.as_secs_f64()
    );
    println!(
        "  ETL (batched, outbox, events published): {etl_rate:>9.0} items/s ({:.2} s)",
        etl.as_secs_f64()
    );
    println!(
        "  COPY of the same rows (ceiling):          {copy_rate:>9.0} rows/s ({:.2} s)",
        copy_time.as_secs_f64()
    );
    println!(
        "  INSERT … ON CONFLICT + publish per item:  {naive_rate:>9.0} items/s ({:.2} s)",
        naive_time.as_secs_f64()
    );
    println!("  ETL / COPY:           {:.2}", etl_rate / copy_rate);
    println!("  ETL / per-item:       {:.2}", etl_rate / naive_rate);
    conn.close().await?;
    pool.close().await;
    Ok(())
}
