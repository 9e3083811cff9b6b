use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_kit::testing::{TcpProxy, TestEnv};
use tributary_kit::{ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

const SPEC: ServiceSpec = ServiceSpec {
    name: ServiceName::Etl,
    version: "0.0.0-test",
    description: "readiness test",
    uses_database: true,
};

async fn readyz(addr: SocketAddr) -> (u16, Value) {
    let response = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/readyz` until `wanted` holds, or fails after the deadline with the last answer.
async fn wait_for(addr: SocketAddr, wanted: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = readyz(addr).await;
        if wanted(status, &body) {
            return (status, body);
        }
        assert!(
            Instant::now() < deadline,
            "readiness never reached the wanted state; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn readyz_names_postgresql_while_it_is_unreachable_and_recovers_when_it_is_back() {
    // The service reaches PostgreSQL through a proxy the test can cut, so the machine's shared
    // server keeps running for the other tests.
    let mut env = TestEnv::new().await;
    let upstream: SocketAddr = format!("{}:{}", env.config.database.host, env.config.database.port)
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(upstream).await.unwrap();
    env.config.database.port = proxy.addr().port();
    env.config.database.acquire_timeout_secs = 1;

    let runtime = ServiceRuntime::start(SPEC, env.config.clone())
        .await
        .unwrap();
    let addr = runtime.http_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run_until_stopped(async {
        let _ = stop_rx.await;
    }));

    let (status, body) = readyz(addr).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);

    proxy.cut();
    let (status, body) = wait_for(addr, |status, _| status == 503).await;
    assert_eq!(status, 503);
    assert_eq!(body["ready"], false);
    assert_eq!(check(&body, "postgresql")["ok"], false, "{body}");
    // Which dependency is down, never why: the cause (the pool's error, the address) is for
    // the log, not for whoever probes an open route.
    assert_eq!(
        check(&body, "postgresql")["error"],
        tributary_kit::health::CHECK_FAILED,
        "{body}"
    );
    let text = body.to_string();
    for internal in [
        "pool",
        "timed out",
        "refused",
        "127.0.0.1",
        &proxy.addr().port().to_string(),
    ] {
        assert!(
            !text.contains(internal),
            "/readyz shows `{internal}`: {text}"
        );
    }
    assert_eq!(
        check(&body, "nats")["ok"],
        true,
        "only PostgreSQL is down: {body}"
    );

    proxy.restore();
    let (_, body) = wait_for(addr, |status, _| status == 200).await;
    assert_eq!(body["ready"], true);
    assert_eq!(check(&body, "postgresql")["ok"], true);

    // healthz answers throughout; metrics are Prometheus text.
    let healthz = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(healthz.status().as_u16(), 200);
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_service_starts_against_a_database_that_does_not_exist_yet_and_migrates_it() {
    let mut env = TestEnv::new().await;
    // A name nobody created: the service must create and migrate it.
    let fresh = format!("{}_fresh", env.database);
    env.config.database.name = fresh.clone();
    let runtime = ServiceRuntime::start(SPEC, env.config.clone())
        .await
        .unwrap();
    let pool = runtime.db.clone().unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('person', 'source_record', 'outbox')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 3);
    runtime.run_until_stopped(async {}).await.unwrap();
    let admin = env.pool().await;
    sqlx::query(&format!("DROP DATABASE \"{fresh}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
