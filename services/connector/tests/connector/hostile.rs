//! The hostile-plugin suite, connector side: WebAssembly connectors that misbehave on purpose,
//! run by the real connector service next to a well-behaved instance. The guests are real
//! toolchain output (`plugins/wasm/js-hostile`, JavaScript through componentize-js); the
//! components with forbidden imports or a wrong digest are made from WAT here ([`fixtures`]).
//!
//! Each misbehaviour is stopped with its named error, seen in the sync's `SyncFailed`, in the
//! sync state (`connector.state`) and as the instance's last error in the plugin manager
//! (`plugins.instance`), while the well-behaved instance keeps syncing and the service stays
//! ready (`/readyz`, and `connector.states` answered).

mod fixtures;
mod logs;

use std::ops::Deref;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tributary_kit::testing::guests::serve_guests;
use tributary_kit::testing::{Accept, Events};
use tributary_plugin_sdk::testing::{Canned, FixtureServer};
use tributary_proto::events::{EventKind, SyncEvent};
use tributary_proto::requests::connector::{CancelSync, StatesQuery};

use crate::support::{Harness, TempDir};

/// The hostile connector: memory 32 MiB, 2 s of CPU a call, items of at most 64 KiB.
const HOSTILE: &str = "com.example.js-hostile";
/// The same component with a minute of CPU a call, so that only `connector.cancel` stops a
/// guest that spins without asking whether it was cancelled.
const PATIENT: &str = "com.example.js-hostile-patient";
/// The well-behaved instance every test keeps syncing (`HOSTILE` with `well-behaved`).
const STEADY: &str = "steady";
/// The misbehaving instance of a test.
const SUBJECT: &str = "hostile";
/// Documents one sync of `well-behaved` hands over.
const STEADY_ITEMS: u64 = 3;
/// How long the first event of an instance may take: it loads its component (compiled once
/// per machine into the shared cache, tens of seconds the first time).
const FIRST: Duration = Duration::from_secs(180);
/// How long any later event may take.
const LATER: Duration = Duration::from_secs(30);

/// The harness of the connector suite, serving the built guests and the WAT fixtures.
struct Hostile {
    mesh: Harness,
    /// The WAT fixtures' plugin directory, removed at the end.
    _fixtures: TempDir,
}

impl Deref for Hostile {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.mesh
    }
}

impl Hostile {
    /// The plugin manager and the connector service, with the built guests and the fixtures
    /// in their plugin directories, and what the instances log captured.
    async fn start() -> Self {
        logs::capture();
        let fixtures = TempDir::new("hostile-components");
        fixtures::write_all(&fixtures.0);
        let dir = fixtures.0.clone();
        let mesh = Harness::start_with(false, move |env| {
            serve_guests(&mut env.config);
            env.config.plugin_manager.plugin_dirs.push(dir);
        })
        .await;
        Hostile {
            mesh,
            _fixtures: fixtures,
        }
    }

    /// Installs `plugin` as `instance` with `config`, its permissions accepted, and enables it
    /// (which starts its first sync).
    async fn add(&self, plugin: &str, instance: &str, config: Value) {
        self.install(plugin, instance, config, Accept::Requested)
            .await;
        self.enable(instance).await;
    }

    /// Adds the well-behaved instance and waits for its first sync to complete.
    async fn add_steady(&self, completed: &mut Events) {
        self.add(HOSTILE, STEADY, json!({ "behaviour": "well-behaved" }))
            .await;
        let done = completed.next_of(STEADY, FIRST).await;
        assert_eq!(done.data["items"], STEADY_ITEMS, "{done:?}");
    }

    /// Syncs the well-behaved instance once more and waits until it completes.
    async fn steady_syncs(&self, completed: &mut Events) {
        let accepted = self.sync_now(json!({ "instance_id": STEADY })).await;
        let done = completed.next_of(STEADY, LATER).await;
        assert_eq!(done.data["sync_id"], accepted["sync_id"]);
        assert_eq!(done.data["items"], STEADY_ITEMS, "{done:?}");
    }

    /// The service answers `/readyz` with 200 and `connector.states` within 2 s each: a guest
    /// holding a tokio worker would keep one of them waiting.
    async fn assert_ready(&self) {
        let addr = self
            .connector
            .as_ref()
            .expect("the connector runs")
            .http_addr;
        let began = Instant::now();
        let answer = reqwest::Client::new()
            .get(format!("http://{addr}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/readyz did not answer: {e}"));
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!((status, &body["ready"]), (200, &json!(true)), "{body}");
        let states = tokio::time::timeout(
            Duration::from_secs(2),
            self.ask::<StatesQuery, Value>(json!({})),
        )
        .await
        .unwrap_or_else(|_| panic!("connector.states took over 2 s"))
        .unwrap();
        assert!(states["instances"].is_array(), "{states}");
        eprintln!("ready: answered in {:?}", began.elapsed());
    }

    /// Waits until the plugin manager has `instance` failed with an error containing
    /// `needle`; answers the error.
    async fn failed_in_manager(&self, instance: &str, needle: &str) -> String {
        let deadline = Instant::now() + LATER;
        loop {
            let view = self.client().instance(instance).await.unwrap();
            if view.state == "failed" {
                if let Some(error) = view.last_error.as_ref().filter(|e| e.contains(needle)) {
                    return error.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "{instance} is {} in the plugin manager, last error {:?}; wanted failed with `{needle}`",
                view.state,
                view.last_error
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs an instance of `plugin` with `config` next to the well-behaved one and checks that
    /// its syncs, the first on enabling it and one asked for with `connector.sync`, fail
    /// naming `needle` everywhere the error is seen, while the well-behaved instance syncs and
    /// the service stays ready. Answers the error, for what a test checks more.
    async fn fails_naming(&self, plugin: &str, config: Value, needle: &str) -> String {
        let mut failed = self.watch(EventKind::Sync(SyncEvent::Failed)).await;
        let mut completed = self.watch(EventKind::Sync(SyncEvent::Completed)).await;
        self.add_steady(&mut completed).await;

        self.add(plugin, SUBJECT, config).await;
        let first = failed.next_of(SUBJECT, FIRST).await;
        let error = first.data["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "wanted `{needle}` in: {error}");

        // Asked for again: it fails the same way, and meanwhile the other instance syncs.
        let accepted = self.sync_now(json!({ "instance_id": SUBJECT })).await;
        self.assert_ready().await;
        self.steady_syncs(&mut completed).await;
        let again = failed.next_of(SUBJECT, LATER).await;
        assert_eq!(again.data["sync_id"], accepted["sync_id"]);
        assert_eq!(again.data["error"], error.as_str());

        let state = self.state(SUBJECT).await;
        assert_eq!(state["status"], "failed", "{state}");
        assert_eq!(state["last_error"], error.as_str(), "{state}");
        assert_eq!(
            self.failed_in_manager(SUBJECT, needle).await,
            error,
            "the plugin manager's last error"
        );
        assert_eq!(self.state(STEADY).await["status"], "succeeded");
        self.assert_ready().await;
        error
    }

    /// Stops the services.
    async fn stop(self) {
        self.mesh.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_loop_is_stopped_at_the_call_cpu_limit() {
    let mesh = Hostile::start().await;
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "loop" }),
            "call exceeded 2 s of CPU",
        )
        .await;
    assert_eq!(error, "call exceeded 2 s of CPU");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_stopped_at_the_memory_limit() {
    let mesh = Hostile::start().await;
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "bomb" }),
            "memory limit 32 MiB exceeded",
        )
        .await;
    assert_eq!(error, "memory limit 32 MiB exceeded");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_a_host_not_granted_is_refused_naming_the_permission() {
    let mesh = Hostile::start().await;
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "fetch-ungranted" }),
            "permission `network:outbound:ungranted.example` is not granted",
        )
        .await;
    assert!(error.contains("GET http://ungranted.example"), "{error}");
    assert!(!error.contains("/tasks"), "a path may hold a key: {error}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_a_granted_host_to_one_not_granted_is_refused() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/redirect",
        [Canned::status(302).header("Location", "http://elsewhere.example/tasks")],
    );
    let mesh = Hostile::start().await;
    mesh.fails_naming(
        HOSTILE,
        json!({ "behaviour": "fetch-redirect", "grantedUrl": server.base_url() }),
        "permission `network:outbound:elsewhere.example` is not granted",
    )
    .await;
    // The granted host was asked, once a sync; the redirect was never followed.
    assert_eq!(server.requests_to("/redirect").len(), 2);
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_an_ip_literal_not_granted_is_refused() {
    let server = FixtureServer::start().await.unwrap();
    // Granted 127.0.0.1 (the fixture server), it reaches for another address.
    let mesh = Hostile::start().await;
    mesh.fails_naming(
        HOSTILE,
        json!({ "behaviour": "fetch-ip", "grantedUrl": server.base_url() }),
        "permission `network:outbound:192.0.2.7` is not granted",
    )
    .await;
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_on_a_subject_not_granted_is_refused_naming_the_permission() {
    let mesh = Hostile::start().await;
    let mut forbidden = mesh
        .nats()
        .subscribe(mesh.subjects().qualify("hostile.forbidden"))
        .await
        .unwrap();
    mesh.fails_naming(
        HOSTILE,
        json!({ "behaviour": "emit-ungranted" }),
        "permission `event:publish:hostile.forbidden` is not granted",
    )
    .await;
    // Nothing went out on the subject, not even for a moment.
    let leaked = tokio::time::timeout(Duration::from_millis(200), forbidden.next()).await;
    assert!(leaked.is_err(), "published: {leaked:?}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_of_an_entity_type_not_granted_fails_the_sync() {
    let mesh = Hostile::start().await;
    mesh.fails_naming(
        HOSTILE,
        json!({ "behaviour": "entity-ungranted" }),
        "the plugin yielded a person item: permission `data:write:persons` is not granted",
    )
    .await;
    let state = mesh.state(SUBJECT).await;
    assert_eq!(state["items"], 0, "{state}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_over_the_size_limit_fails_the_sync_naming_both_sizes() {
    let mesh = Hostile::start().await;
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "big-item", "size": 100000 }),
            "over the limit of 65536 bytes for one item",
        )
        .await;
    assert!(error.starts_with("item `big-1` is 1000"), "{error}");
    let state = mesh.state(SUBJECT).await;
    assert_eq!(state["items"], 0, "{state}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_fails_the_sync_with_the_trap() {
    let mesh = Hostile::start().await;
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "trap" }),
            "the plugin trapped",
        )
        .await;
    assert!(error.starts_with("the plugin trapped: "), "{error}");
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_never_sees_a_secret_field_in_its_config() {
    let secret = "hostile-suite-api-key-9f2c";
    let mesh = Hostile::start().await;
    // The guest fails with the config it was handed, so the error shows what it saw.
    let error = mesh
        .fails_naming(
            HOSTILE,
            json!({ "behaviour": "leak-config", "count": 7, "apiKey": secret }),
            "the config the host handed over: ",
        )
        .await;
    assert!(error.contains(r#""count":7"#), "{error}");
    assert!(
        !error.contains(secret),
        "the guest read the secret: {error}"
    );
    mesh.stop().await;
}

/// Waits until `instance`'s guest logged `needle` (it runs its code, past instantiation).
async fn wait_logged(instance: &str, needle: &str) {
    let deadline = Instant::now() + FIRST;
    while !logs::lines_of(instance)
        .iter()
        .any(|l| l.message.contains(needle))
    {
        assert!(
            Instant::now() < deadline,
            "{instance} never logged `{needle}`"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// CPU time the test process has used (user and system), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The fields after the command (in parentheses, which may hold spaces): utime and stime
    // are the 12th and 13th, in clock ticks (100 a second on Linux).
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_cancel_stops_a_guest_that_never_checks_within_a_second() {
    let mesh = Hostile::start().await;
    let mut failed = mesh.watch(EventKind::Sync(SyncEvent::Failed)).await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.add_steady(&mut completed).await;
    // Two spinning guests: as many as the test's runtime has worker threads.
    let spinners = ["spinner-1", "spinner-2"];
    for spinner in spinners {
        mesh.add(PATIENT, spinner, json!({ "behaviour": "ignore-cancel" }))
            .await;
    }
    for spinner in spinners {
        wait_logged(spinner, "spinning without ever asking").await;
    }

    // While both spin, the service answers and the other instance syncs.
    mesh.assert_ready().await;
    mesh.steady_syncs(&mut completed).await;
    for spinner in spinners {
        let state = mesh.state(spinner).await;
        assert_eq!(state["status"], "running", "{state}");
    }

    for spinner in spinners {
        let asked = Instant::now();
        let cancelled: Value = mesh
            .ask::<CancelSync, _>(json!({ "instance_id": spinner }))
            .await
            .unwrap();
        let failure = failed.next_of(spinner, LATER).await;
        let latency = asked.elapsed();
        eprintln!("{spinner}: stopped {latency:?} after connector.cancel was asked");
        assert_eq!(failure.data["sync_id"], cancelled["sync_id"]);
        assert_eq!(failure.data["error"], "cancelled by connector.cancel");
        assert!(
            latency < Duration::from_secs(1),
            "{spinner} took {latency:?} to stop"
        );
        let state = mesh.state(spinner).await;
        assert_eq!(state["status"], "cancelled", "{state}");
    }
    // The guests stopped, not only their syncs: the process is all but idle now (measured where
    // each test has a process of its own, as under nextest; in a shared one other tests run).
    if std::env::var_os("NEXTEST_EXECUTION_MODE").is_some() {
        let (cpu, wall) = (process_cpu(), Instant::now());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = process_cpu() - cpu;
        eprintln!("CPU after the cancels: {used:?} in {:?}", wall.elapsed());
        assert!(
            used < Duration::from_millis(500),
            "still spinning: {used:?} of CPU in a second"
        );
    }
    mesh.steady_syncs(&mut completed).await;
    mesh.assert_ready().await;
    mesh.stop().await;
}

/// `host.log` calls of the flooding guest in one sync.
const FLOOD_LINES: u64 = 200_000;
/// The default rate of kept log lines (`[wasm] log_lines_per_second`).
const LINES_PER_SECOND: u64 = 50;

/// The flooding instance's lines: those of the guest kept, and the dropped lines the host
/// reported.
fn flood_counts(instance: &str) -> (Vec<String>, u64) {
    let lines = logs::lines_of(instance);
    let kept = lines
        .iter()
        .filter(|l| l.target == "plugin" && l.message.starts_with("flood line "))
        .map(|l| l.message.clone())
        .collect();
    let reported = lines
        .iter()
        .filter(|l| l.level == tracing::Level::WARN)
        .filter_map(|l| {
            let (count, rest) = l.message.split_once(' ')?;
            rest.starts_with("log lines of the plugin dropped")
                .then(|| count.parse::<u64>().ok())?
        })
        .sum();
    (kept, reported)
}

/// Runs a flooding instance to a successful sync while the well-behaved one syncs and the
/// service answers; answers the harness and how long the flood's sync ran.
async fn flood() -> (Hostile, Duration) {
    let mesh = Hostile::start().await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    let mut started = mesh.watch(EventKind::Sync(SyncEvent::Started)).await;
    mesh.add_steady(&mut completed).await;
    mesh.add(
        PATIENT,
        SUBJECT,
        json!({ "behaviour": "log-flood", "lines": FLOOD_LINES, "count": 2 }),
    )
    .await;
    started.next_of(SUBJECT, LATER).await;
    let began = Instant::now();
    wait_logged(SUBJECT, "flood line 0").await;
    mesh.assert_ready().await;
    mesh.steady_syncs(&mut completed).await;
    let done = completed.next_of(SUBJECT, FIRST).await;
    let took = began.elapsed();
    eprintln!("the flood's sync took {took:?}");
    assert_eq!(done.data["items"], 2, "{done:?}");
    assert_eq!(mesh.state(SUBJECT).await["status"], "succeeded");
    mesh.assert_ready().await;
    (mesh, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_held_to_the_rate_and_the_sync_still_succeeds() {
    let (mesh, took) = flood().await;
    let (kept, reported) = flood_counts(SUBJECT);
    let windows = took.as_secs() + 1;
    eprintln!(
        "kept {} lines, {reported} reported dropped, in {took:?}",
        kept.len()
    );
    assert_eq!(kept.first().map(String::as_str), Some("flood line 0"));
    assert!(
        kept.len() as u64 <= LINES_PER_SECOND * windows,
        "{} lines kept in {took:?}, over {LINES_PER_SECOND} a second",
        kept.len()
    );
    // The flood outlasts a second, so the host has said how many it dropped.
    assert!(reported > 0, "no dropped lines reported of {FLOOD_LINES}");
    assert!(
        kept.len() as u64 + reported <= FLOOD_LINES,
        "{} kept and {reported} reported dropped of {FLOOD_LINES}",
        kept.len()
    );
    mesh.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_log_flood_is_kept_or_counted_as_dropped() {
    let (mesh, _) = flood().await;
    let (kept, reported) = flood_counts(SUBJECT);
    assert_eq!(
        kept.len() as u64 + reported,
        FLOOD_LINES,
        "{} kept and {reported} reported dropped",
        kept.len()
    );
    mesh.stop().await;
}

/// Checks that the fixture `plugin` is listed invalid by the plugin manager with `needle` in
/// its problem (so it is never installed: the check runs at discovery, before any install),
/// that installing it is refused, and that the well-behaved instance keeps syncing.
async fn refused_at_install(plugin: &str, needle: &str) -> String {
    let mesh = Hostile::start().await;
    let mut completed = mesh.watch(EventKind::Sync(SyncEvent::Completed)).await;
    mesh.add_steady(&mut completed).await;
    let list = mesh
        .client()
        .call(&tributary_proto::requests::plugins::ListPlugins {})
        .await
        .unwrap();
    assert!(
        list.plugins.iter().all(|p| p.id != plugin),
        "{plugin} is offered for install"
    );
    let invalid = list
        .invalid
        .iter()
        .find(|i| i.id.as_deref() == Some(plugin))
        .unwrap_or_else(|| panic!("{plugin} is not listed invalid: {:?}", list.invalid));
    let reason = invalid
        .problems
        .iter()
        .map(|p| p.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    assert!(reason.contains(needle), "wanted `{needle}` in: {reason}");
    let install = mesh
        .client()
        .call(&tributary_proto::requests::plugins::PluginInfo {
            plugin_id: plugin.to_owned(),
        })
        .await;
    assert!(install.is_err(), "{plugin} can be looked up for install");
    mesh.steady_syncs(&mut completed).await;
    mesh.assert_ready().await;
    mesh.stop().await;
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_importing_sockets_is_refused_naming_the_import() {
    let reason = refused_at_install(
        fixtures::SOCKETS,
        &format!(
            "the component imports `{}`, which no permission can grant",
            fixtures::SOCKETS_IMPORT
        ),
    )
    .await;
    assert!(reason.contains("no sockets"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_importing_a_filesystem_is_refused_naming_the_import() {
    let reason = refused_at_install(
        fixtures::FILESYSTEM,
        &format!(
            "the component imports `{}`, which no permission can grant",
            fixtures::FILESYSTEM_IMPORT
        ),
    )
    .await;
    assert!(reason.contains("no filesystem"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_is_not_what_its_manifest_says_is_refused() {
    let (claimed, actual) = fixtures::tampered_digests();
    assert_ne!(claimed, actual);
    refused_at_install(
        fixtures::TAMPERED,
        &format!("has SHA-256 {actual}, and its manifest says {claimed}"),
    )
    .await;
}
