//! What a service's HTTP listener shows to whoever reaches it (issue 27, Low): a loopback
//! listener refuses a `Host` it does not answer to (DNS rebinding), and `/metrics` is served
//! only on loopback or with the metrics token.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_kit::{Config, ServiceRuntime, ServiceSpec};
use tributary_proto::ServiceName;

const SPEC: ServiceSpec = ServiceSpec {
    name: ServiceName::Etl,
    version: "0.0.0-test",
    description: "exposure test",
    uses_database: false,
};

async fn started(config: Config) -> RunningService {
    RunningService::start(|config| ServiceRuntime::start(SPEC, config), config).await
}

/// `GET path` with exactly this `Host` header (and `Authorization`, when given), as a
/// browser tricked by a rebound name would send it: the status and the body.
async fn get(addr: SocketAddr, path: &str, host: &str, bearer: Option<&str>) -> (u16, String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let authorization = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_loopback_service_refuses_a_rebound_host_name_and_answers_its_own() {
    // A page on attacker.example whose name now resolves to 127.0.0.1 reaches the service
    // with `Host: attacker.example`: it must learn nothing, not even readiness.
    let env = TestEnv::new().await;
    let service = started(env.config.clone()).await;
    let port = service.http_addr.port();

    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, body) = get(
            service.http_addr,
            path,
            &format!("attacker.example:{port}"),
            None,
        )
        .await;
        assert_eq!(status, 421, "{path} answered a rebound name: {body}");
        assert!(
            !body.contains("alive") && !body.contains("checks"),
            "{body}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, body) = get(service.http_addr, "/healthz", &host, None).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    service.stop().await;
}

#[tokio::test]
async fn a_loopback_service_answers_the_names_it_is_configured_for() {
    let mut env = TestEnv::new().await;
    env.config.http_allowed_hosts = vec!["hub.example".to_owned()];
    env.config.channel.public_base_url = "https://tunnel.example".to_owned();
    let service = started(env.config.clone()).await;

    for host in ["hub.example", "HUB.example:8443", "tunnel.example"] {
        let (status, body) = get(service.http_addr, "/healthz", host, None).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    let (status, _) = get(service.http_addr, "/healthz", "other.example", None).await;
    assert_eq!(status, 421);
    service.stop().await;
}

#[tokio::test]
async fn metrics_need_the_metrics_token_once_one_is_set() {
    let mut env = TestEnv::new().await;
    let token = "metrics-token-0123456789";
    env.config.metrics.token = token.to_owned().into();
    let service = started(env.config.clone()).await;

    let (status, body) = get(service.http_addr, "/metrics", "127.0.0.1", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = get(
        service.http_addr,
        "/metrics",
        "127.0.0.1",
        Some("another-token-0123456789"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = get(service.http_addr, "/metrics", "127.0.0.1", Some(token)).await;
    assert_eq!(status, 200);
    service.stop().await;
}

#[tokio::test]
async fn metrics_are_off_on_a_listener_others_can_reach_without_a_token() {
    // Bound to every address (as in a container) with no metrics token: whoever reaches the
    // port gets no metrics, while health stays open for the orchestrator.
    let mut env = TestEnv::new().await;
    env.config.etl.http_addr = "0.0.0.0:0".parse().unwrap();
    let service = started(env.config.clone()).await;

    let (status, body) = get(service.http_addr, "/metrics", "hub.example", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("# TYPE"), "{body}");
    let (status, _) = get(service.http_addr, "/healthz", "hub.example", None).await;
    assert_eq!(status, 200, "a listener others reach is not Host-checked");
    service.stop().await;
}

#[tokio::test]
async fn a_short_metrics_token_stops_start_up_naming_the_key() {
    let mut env = TestEnv::new().await;
    // Started once as it should be, so the test's streams are there.
    started(env.config.clone()).await.stop().await;
    env.config.metrics.token = "short".to_owned().into();
    let error = ServiceRuntime::start(SPEC, env.config.clone())
        .await
        .expect_err("a 5-character metrics token is refused");
    assert!(error.to_string().contains("metrics.token"), "{error}");
}
