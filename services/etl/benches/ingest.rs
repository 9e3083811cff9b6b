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
//! 5. The floor: what the contract alone costs, with none of the ETL's own work. On the same
//!    backlog, through the same consumer, batching and outbox publisher as the ETL, each batch
//!    `COPY`s source records and person rows made before the clock starts, writes their events
//!    to the outbox and commits; then its items are acked and the events published with
//!    `Nats-Msg-Id`. No validation, normalisation, key lookup, change detection or identity
//!    resolution: no implementation that keeps the contract does less, so no ETL on this
//!    machine can be faster than this.
//!
//! `ETL_BATCH_SIZE` and `ETL_CONCURRENT_BATCHES` set the ETL's knobs for a run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use serde_json::json;
use sqlx::{Connection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_etl::normalise::{EntityFields, NormalisedItem, Normaliser};
use tributary_etl::store::copy::CopyText;
use tributary_etl::store::{copy_source_row, entity_row, sql};
use tributary_kit::backoff::Backoff;
use tributary_kit::consume::{consume_in_batches, Batching};
use tributary_kit::outbox::{OutboxEvent, OutboxPublisher};
use tributary_kit::testing::TestEnv;
use tributary_proto::envelope::MSG_ID_HEADER;
use tributary_proto::events::{DataChange, EventKind};
use tributary_proto::model::EntityType;
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::{Envelope, EventSource, ServiceName, Subjects};

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

/// An environment of its own for one run, with the ETL's knobs from the environment
/// (`ETL_BATCH_SIZE=2000 cargo bench …`), and its streams.
async fn bench_env() -> anyhow::Result<(TestEnv, jetstream::Context)> {
    let mut env = TestEnv::new().await;
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
    // A bench publishes more than a test: streams of 512 MiB, still far below the store.
    env.config.nats.max_bytes = tributary_kit::provision::StreamSizes::uniform(512 << 20);
    let js = jetstream::new(env.nats().await);
    tributary_kit::testing::provision(&env.config).await;
    Ok((env, js))
}

/// Publishes `payloads` as items of instance `bench`, awaiting JetStream's acks a window at
/// a time (the client caps the acks it keeps in flight).
async fn publish_items(
    js: &jetstream::Context,
    subjects: &Subjects,
    payloads: &[Vec<u8>],
) -> anyhow::Result<()> {
    let subject = subjects.connector_items("bench");
    for window in payloads.chunks(1000) {
        let mut acks = Vec::with_capacity(window.len());
        for payload in window {
            acks.push(js.publish(subject.clone(), payload.clone().into()).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(())
}

/// Waits until the `etl-items` consumer has acked all `n` items and the data stream holds
/// `n` events; fails, saying how far it got, when that takes more than ten minutes.
async fn wait_until_done(
    js: &jetstream::Context,
    subjects: &Subjects,
    n: usize,
) -> anyhow::Result<()> {
    let items = js
        .get_stream(StreamKey::ConnectorItems.name(subjects))
        .await?;
    let mut events = js.get_stream(StreamKey::DataEvents.name(subjects)).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut acked = false;
    loop {
        if Instant::now() > deadline {
            anyhow::bail!(
                "not done after ten minutes: items all acked: {acked}; {} of {n} events published",
                events.info().await?.state.messages
            );
        }
        if !acked {
            let mut consumer: jetstream::consumer::PullConsumer = items
                .get_consumer(ConsumerKey::EtlItems.durable_name())
                .await
                .map_err(|e| anyhow::anyhow!("the ETL's consumer: {e}"))?;
            let info = consumer.info().await?;
            acked = info.num_pending == 0
                && info.num_ack_pending == 0
                && info.ack_floor.stream_sequence as usize >= n;
        }
        if acked && events.info().await?.state.messages as usize >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// CPU seconds used by this process, PostgreSQL and NATS since `before`.
fn cpu_since(before: Option<[f64; 3]>) -> Option<[f64; 3]> {
    before
        .zip(cpu_seconds())
        .map(|(before, after)| [0, 1, 2].map(|i| after[i] - before[i]))
}

/// One run of the ETL over `payloads` in an environment of its own. With `backlog`, the items
/// are in the stream before the ETL starts and the clock starts with it; otherwise the clock
/// starts with the first publish. Returns the time until every item is acked and every event
/// is published, and the CPU spent meanwhile.
async fn run_etl(
    payloads: &[Vec<u8>],
    backlog: bool,
) -> anyhow::Result<(Duration, Option<[f64; 3]>)> {
    let n = payloads.len();
    let (env, js) = bench_env().await?;
    let subjects = env.subjects();
    if backlog {
        publish_items(&js, &subjects, payloads).await?;
    }
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let runtime = tributary_etl::build(env.config.clone()).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(runtime.run_until_stopped(async {
        let _ = stopped.await;
    }));
    if !backlog {
        publish_items(&js, &subjects, payloads).await?;
    }
    wait_until_done(&js, &subjects, n).await?;
    let took = started.elapsed();
    // Before the ETL's connections close, so that their backends are still counted.
    let cpu = cpu_since(cpu_before);
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

/// What the floor writes for one item, made before its clock starts.
struct FloorWrites {
    /// Its source record, a line of `COPY source_record` text.
    source: Vec<u8>,
    /// Its person row, a line of `COPY person` text.
    person: Vec<u8>,
    /// Its `data.PersonCreated` event.
    event: OutboxEvent,
}

impl FloorWrites {
    /// The writes of a new person from `item`, as the ETL makes them.
    fn of(item: &NormalisedItem, subjects: &Subjects) -> anyhow::Result<Self> {
        let id = uuid::Uuid::now_v7();
        let mut source = CopyText::default();
        copy_source_row(&mut source, item, id);
        let row = entity_row(item.json.clone(), id, &json!(chrono::Utc::now()));
        let mut person = CopyText::default();
        person.object_row(&sql::columns(EntityType::Person), &row);
        let kind = EventKind::Data {
            entity: EntityType::Person,
            change: DataChange::Created,
        };
        let envelope = Envelope::new(
            kind,
            EventSource::new(ServiceName::Etl.as_str(), Some("bench".into())),
            Some(id),
            row,
        );
        Ok(Self {
            source: source.into_bytes(),
            person: person.into_bytes(),
            event: OutboxEvent::new(subjects.event(kind), &envelope, None)?,
        })
    }

    /// The writes of the item in `message`: the bench publishes item `i` as the stream's
    /// message `i + 1`.
    fn of_message<'a>(
        writes: &'a [FloorWrites],
        message: &jetstream::Message,
    ) -> anyhow::Result<&'a FloorWrites> {
        let sequence = message
            .info()
            .map_err(|e| anyhow::anyhow!("an item without its JetStream info: {e}"))?
            .stream_sequence;
        usize::try_from(sequence)
            .ok()
            .and_then(|s| writes.get(s.checked_sub(1)?))
            .context("an item the bench did not publish")
    }
}

/// What the floor does with a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Floor {
    /// The contract's steps: rows, source records and outbox in one transaction, then the
    /// acks; the outbox publisher publishes the events.
    Whole,
    /// Only the NATS part of them: each event published with `Nats-Msg-Id` and its
    /// acknowledgement awaited, then the items acked. No database.
    NatsOnly,
}

/// Acks every message of a batch.
async fn ack_all(messages: &[jetstream::Message]) -> anyhow::Result<()> {
    for message in messages {
        message
            .ack()
            .await
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
    }
    Ok(())
}

/// One batch of [`Floor::NatsOnly`].
async fn publish_floor_batch(
    js: &jetstream::Context,
    messages: &[jetstream::Message],
    writes: &[FloorWrites],
) -> anyhow::Result<()> {
    let mut acks = Vec::with_capacity(messages.len());
    for message in messages {
        let event = &FloorWrites::of_message(writes, message)?.event;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(MSG_ID_HEADER, event.event_id.to_string().as_str());
        let payload = event.payload.get().as_bytes().to_vec();
        acks.push(
            js.publish_with_headers(event.subject.clone(), headers, payload.into())
                .await?,
        );
    }
    for ack in acks {
        ack.await?;
    }
    ack_all(messages).await
}

/// One batch of [`Floor::Whole`]: its prepared rows and events in one transaction, then its
/// acks.
async fn write_floor_batch(
    pool: &PgPool,
    messages: &[jetstream::Message],
    writes: &[FloorWrites],
    wake: &Notify,
) -> anyhow::Result<()> {
    let (mut sources, mut people, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for message in messages {
        let item = FloorWrites::of_message(writes, message)?;
        sources.extend_from_slice(&item.source);
        people.extend_from_slice(&item.person);
        events.push(item.event.clone());
    }
    let mut tx = pool.begin().await?;
    for (statement, data) in [
        (sql::COPY_SOURCES.to_owned(), sources),
        (sql::copy_entities(EntityType::Person), people),
    ] {
        let mut copy = tx.copy_in_raw(&statement).await?;
        copy.send(data).await?;
        copy.finish().await?;
    }
    tributary_kit::outbox::enqueue_all(&mut tx, ServiceName::Etl, &events).await?;
    tx.commit().await?;
    ack_all(messages).await?;
    wake.notify_one();
    Ok(())
}

/// The floor over `payloads` (see the module's doc), in an environment of its own and with
/// the ETL's settings. Returns the time from the start until every item is acked and every
/// event is published, and the CPU spent meanwhile.
async fn run_floor(
    floor: Floor,
    payloads: &[Vec<u8>],
    normaliser_of: impl Fn(&Subjects) -> Normaliser,
) -> anyhow::Result<(Duration, Option<[f64; 3]>)> {
    let n = payloads.len();
    let (env, js) = bench_env().await?;
    let subjects = env.subjects();
    let normaliser = normaliser_of(&subjects);
    let subject = subjects.connector_items("bench");
    let writes = payloads
        .iter()
        .map(|payload| {
            let item = normaliser.normalise(normaliser.decode(&subject, payload)?)?;
            FloorWrites::of(&item, &subjects)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    publish_items(&js, &subjects, payloads).await?;
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database).await?;
    let consumer = tributary_kit::nats::provision_consumer(
        &js,
        &subjects,
        ConsumerKey::EtlItems,
        tributary_etl::delivery_limits(&env.config),
    )
    .await?;
    let settings = env.config.etl.clone();
    let backoff = || Backoff::new(settings.retry_initial(), settings.retry_max());
    let wake = Arc::new(Notify::new());
    let publisher = OutboxPublisher::new(
        pool.clone(),
        js.clone(),
        subjects.clone(),
        ServiceName::Etl,
        settings.outbox_batch_size,
        wake.clone(),
    );
    let batching = Batching {
        batch_size: settings.batch_size,
        batch_wait: settings.batch_wait(),
        concurrent_batches: settings.concurrent_batches,
        cut_when_idle: true,
    };
    let shutdown = CancellationToken::new();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (_, _, done) = tokio::join!(
        async {
            if floor == Floor::Whole {
                publisher.run(backoff(), shutdown.clone()).await;
            }
        },
        consume_in_batches(
            consumer,
            "items",
            batching,
            backoff(),
            shutdown.clone(),
            |messages| {
                let (pool, js, writes, wake) = (&pool, &js, &writes, &wake);
                async move {
                    let written = match floor {
                        Floor::Whole => write_floor_batch(pool, &messages, writes, wake).await,
                        Floor::NatsOnly => publish_floor_batch(js, &messages, writes).await,
                    };
                    if let Err(e) = written {
                        eprintln!("a batch of the floor failed and comes again: {e:#}");
                    }
                }
            },
        ),
        async {
            let done = wait_until_done(&js, &subjects, n).await;
            let measured = (started.elapsed(), cpu_since(cpu_before));
            shutdown.cancel();
            done.map(|()| measured)
        },
    );
    pool.close().await;
    done
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
    let region = phonenumber::country::Id::US;
    // 5. The floor, next to the ETL's runs so that the machine is in the same state.
    let normaliser_of = |subjects: &Subjects| Normaliser::new(subjects.clone(), region);
    let (floor, floor_cpu) = run_floor(Floor::Whole, &payloads, normaliser_of).await?;
    let (nats_floor, nats_floor_cpu) = run_floor(Floor::NatsOnly, &payloads, normaliser_of).await?;

    // The same rows, normalised as the ETL does it, for the baselines.
    let env = TestEnv::new().await;
    let subjects = env.subjects();
    let js = async_nats::jetstream::new(env.nats().await);
    tributary_kit::nats::provision_streams(&js, &subjects, &env.config.nats.max_bytes).await?;
    let subject = subjects.connector_items("bench");
    // The same schema as the ETL's, for the tables the baselines copy.
    let pool = tributary_kit::db::connect_and_migrate(&env.config.database).await?;
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
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut copy = conn
            .copy_in_raw(&format!(
                "COPY {table} (id, display_name, given_name, family_name, emails, organization, extra) \
                 FROM STDIN (FORMAT csv)"
            ))
            .await?;
        copy.send(csv.as_bytes()).await?;
        let copied = copy.finish().await?;
        copies.push((started.elapsed(), cpu_since(cpu_before)));
        anyhow::ensure!(copied as usize == n, "COPY wrote {copied} rows");
    }
    copies.sort_by_key(|(took, _)| *took);
    let (copy_time, copy_cpu) = copies[1];

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
        headers.insert(MSG_ID_HEADER, id.to_string().as_str());
        js.publish_with_headers(event_subject.clone(), headers, event.into())
            .await?
            .await
            .context("publish")?;
    }
    let naive_time = started.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (etl_rate, live_rate, copy_rate, naive_rate) =
        (rate(backlog), rate(live), rate(copy_time), rate(naive_time));
    let (floor_rate, nats_floor_rate) = (rate(floor), rate(nats_floor));
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
            .map(|(d, _)| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  INSERT … ON CONFLICT + publish per item:           {naive_rate:>7.0} items/s ({:.2} s)",
        naive_time.as_secs_f64()
    );
    println!(
        "  floor, the contract's steps alone (no ETL work):   {floor_rate:>7.0} items/s ({:.2} s)",
        floor.as_secs_f64()
    );
    println!(
        "  floor's NATS part alone (no database):             {nats_floor_rate:>7.0} items/s ({:.2} s)",
        nats_floor.as_secs_f64()
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Half of COPY's rate leaves this many CPU-seconds for all three, however they share.
    let budget = 2.0 * copy_time.as_secs_f64() * cores as f64;
    println!(
        "  half of COPY's rate would leave {budget:.2} CPU-seconds for the {n} items on {cores} cores"
    );
    for (what, took, cpu) in [
        ("ETL on a backlog", backlog, cpu),
        ("floor", floor, floor_cpu),
        ("floor's NATS part", nats_floor, nats_floor_cpu),
        ("COPY", copy_time, copy_cpu),
    ] {
        if let Some([own, postgres, nats]) = cpu {
            println!(
                "  CPU, {what}: this process {own:.2} s, PostgreSQL {postgres:.2} s, NATS \
                 {nats:.2} s = {:.2} s ({:.2} cores of {cores} on average)",
                own + postgres + nats,
                (own + postgres + nats) / took.as_secs_f64(),
            );
        }
    }
    println!("  ETL / COPY:       {:.2}", etl_rate / copy_rate);
    println!("  ETL / per-item:   {:.2}", etl_rate / naive_rate);
    println!("  live / COPY:      {:.2}", live_rate / copy_rate);
    println!("  floor / COPY:     {:.2}", floor_rate / copy_rate);
    println!("  ETL / floor:      {:.2}", etl_rate / floor_rate);
    if let Some((nats, copy)) = nats_floor_cpu.zip(copy_cpu) {
        // The events and acks NATS must handle, plus writing the rows once with COPY, with
        // no source records, no outbox and no work of the ETL: less than any ETL spends.
        let least: f64 = nats.iter().sum::<f64>() + copy.iter().sum::<f64>();
        println!(
            "  floor's NATS part + COPY: {least:.2} CPU-seconds, against the {budget:.2} that \
             half of COPY's rate leaves"
        );
    }
    conn.close().await?;
    pool.close().await;
    Ok(())
}
