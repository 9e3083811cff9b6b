//! Hostile guests made from WAT: each is stopped with an error naming what it ran into, on a
//! runtime that keeps serving other tasks meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tributary_plugin_sdk::{ConnectorPlugin, PluginError, SyncRequest, SyncStep};
use tributary_wasm::{Limits, WasmConnector};

use crate::fixtures;
use crate::guests::{context, runtime};

fn connector(bytes: &[u8], limits: Limits) -> WasmConnector {
    let runtime = runtime();
    let component = runtime.load_bytes(bytes).unwrap();
    WasmConnector::new(runtime, component, limits, vec![])
}

async fn sync(connector: &WasmConnector) -> Vec<Result<SyncStep, PluginError>> {
    let ctx = context("hostile-1", &[], json!({}));
    connector
        .sync(ctx, None, SyncRequest::full())
        .collect()
        .await
}

fn only_error(steps: Vec<Result<SyncStep, PluginError>>) -> String {
    assert_eq!(steps.len(), 1, "{steps:?}");
    match steps.into_iter().next() {
        Some(Err(e)) => e.to_string(),
        other => panic!("expected the sync to fail, got {other:?}"),
    }
}

/// How often the task beside the guest ticks: longer than the guest's 10 ms between yields.
const TICKER_PERIOD: Duration = Duration::from_millis(25);

/// Counts ticks of a task beside the guest, on the same one-thread runtime: a guest that
/// blocked the thread would stop it.
fn ticker() -> Arc<AtomicU64> {
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = ticks.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICKER_PERIOD).await;
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    ticks
}

#[tokio::test(flavor = "current_thread")]
async fn a_well_behaved_guest_ends_its_sync() {
    let steps = sync(&connector(&fixtures::empty(), Limits::default())).await;
    assert!(steps.is_empty(), "{steps:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_endless_loop_is_stopped_at_its_cpu_limit_without_blocking_the_runtime() {
    let limits = Limits {
        call_cpu: Duration::from_millis(300),
        ..Limits::default()
    };
    let looping = connector(&fixtures::busy_loop(), limits);
    let ticks = ticker();
    let started = Instant::now();
    let error = only_error(sync(&looping).await);
    let took = started.elapsed();
    assert_eq!(error, "call exceeded 300 ms of CPU");
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    // The other task ran all along: a third of the ticks it would have had alone at least
    // (on a loaded machine it gets about half; a guest blocking the thread leaves it none).
    let ran = ticks.load(Ordering::Relaxed);
    let alone = (took.as_millis() / TICKER_PERIOD.as_millis()) as u64;
    assert!(
        ran * 3 >= alone && ran >= 3,
        "the runtime was blocked: {ran} of {alone} ticks"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_guest_that_never_checks_cancel_is_stopped_within_a_second_of_it() {
    let limits = Limits {
        call_cpu: Duration::from_secs(60),
        ..Limits::default()
    };
    let looping = connector(&fixtures::busy_loop(), limits);
    let cancel = CancellationToken::new();
    let ctx = context("hostile-cancel", &[], json!({}));
    let mut steps = looping.sync(ctx, None, SyncRequest::full());
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    // What the connector service's runner does: the sync's next step, or the cancel.
    let cancelled_at = tokio::select! {
        step = steps.next() => panic!("the guest should still be looping: {step:?}"),
        () = cancel.cancelled() => Instant::now(),
    };
    drop(steps);
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "stopping took {:?}",
        cancelled_at.elapsed()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_memory_bomb_is_stopped_naming_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    };
    let error = only_error(sync(&connector(&fixtures::memory_bomb(), limits)).await);
    assert_eq!(error, "memory limit 32 MiB exceeded");
}

#[tokio::test(flavor = "current_thread")]
async fn a_trap_fails_the_sync_with_its_message() {
    let error = only_error(sync(&connector(&fixtures::trap(), Limits::default())).await);
    assert!(error.starts_with("the plugin trapped:"), "{error}");
    assert!(error.contains("unreachable"), "{error}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_trap_in_one_instance_leaves_another_of_the_same_component_working() {
    let runtime = runtime();
    let trapping = runtime.load_bytes(&fixtures::trap()).unwrap();
    let fine = runtime.load_bytes(&fixtures::empty()).unwrap();
    let first = WasmConnector::new(runtime.clone(), trapping, Limits::default(), vec![]);
    let second = WasmConnector::new(runtime, fine, Limits::default(), vec![]);
    assert!(only_error(sync(&first).await).contains("trapped"));
    assert!(sync(&second).await.is_empty());
    assert!(
        only_error(sync(&first).await).contains("trapped"),
        "a new guest each sync"
    );
}

#[test]
fn a_component_importing_sockets_is_refused_before_compiling() {
    let bytes =
        wat::parse_str(r#"(component (import "wasi:sockets/tcp@0.2.3" (instance)))"#).unwrap();
    let error = runtime().load_bytes(&bytes).unwrap_err().to_string();
    assert_eq!(
        error,
        "the component imports `wasi:sockets/tcp@0.2.3`, which no permission can grant: a plugin has no sockets; it reaches the network only through HTTP, to the hosts its `network:outbound` permissions grant"
    );
}
