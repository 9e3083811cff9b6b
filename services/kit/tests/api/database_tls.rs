//! TLS to PostgreSQL (`database.ssl_mode`, `database.ssl_root_cert`): a man in the middle
//! that answers the TLS request with "no" is refused under `require`, and one presenting a
//! certificate the configured authority did not sign is refused under `verify-full`.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tributary_kit::config::{DatabaseConfig, SslMode};
use tributary_kit::{db, Config};

/// PostgreSQL's SSLRequest code (1234 << 16 | 5679).
const SSL_REQUEST: u32 = 80_877_103;

fn database(mode: SslMode) -> DatabaseConfig {
    let mut config = Config::defaults().unwrap().database;
    config.ssl_mode = mode;
    config.acquire_timeout_secs = 2;
    config
}

fn unrelated_authority() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/unrelated-ca.pem")
}

/// A downgrading man in the middle: answers the client's TLS request with `N` (no TLS here)
/// and records what the client sends next, in clear.
async fn downgrading_server() -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        socket.read_exact(&mut request).await.unwrap();
        assert_eq!(
            u32::from_be_bytes([request[4], request[5], request[6], request[7]]),
            SSL_REQUEST,
            "the client began with a TLS request"
        );
        socket.write_all(b"N").await.unwrap();
        let mut next = vec![0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut next))
            .await
            .unwrap_or(Ok(0))
            .unwrap_or(0);
        next.truncate(read);
        next
    });
    (port, served)
}

#[tokio::test]
async fn require_refuses_a_server_that_answers_without_tls() {
    let (port, served) = downgrading_server().await;
    let mut config = database(SslMode::Require);
    config.port = port;
    let Err(err) = PgConnection::connect_with(&db::connect_options(&config, "postgres")).await
    else {
        panic!("a connection that was downgraded to clear text was accepted");
    };
    let text = err.to_string();
    assert!(
        text.contains("TLS") && text.contains("does not support"),
        "the refusal says TLS was required: {text}"
    );
    let sent = served.await.unwrap();
    assert!(
        sent.is_empty(),
        "nothing (no startup message, no role name) was sent in clear: {sent:?}"
    );
}

#[tokio::test]
async fn prefer_lets_the_same_downgrade_through_in_clear() {
    // Why an operator reaching PostgreSQL over a network sets verify-full: under the default
    // the role's name goes to whoever answered "no TLS".
    let (port, served) = downgrading_server().await;
    let mut config = database(SslMode::Prefer);
    config.port = port;
    let _ = PgConnection::connect_with(&db::connect_options(&config, "postgres")).await;
    let sent = served.await.unwrap();
    let user = format!("user\0{}\0", config.user);
    assert!(
        sent.windows(user.len()).any(|w| w == user.as_bytes()),
        "prefer sent the startup message in clear: {sent:?}"
    );
}

/// Whether this machine's PostgreSQL offers TLS at all.
async fn server_offers_tls() -> bool {
    let mut conn = PgConnection::connect_with(&db::connect_options(
        &database(SslMode::Disable),
        "postgres",
    ))
    .await
    .unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    ssl == "on"
}

#[tokio::test]
async fn require_against_the_local_server_encrypts_or_refuses() {
    let offers = server_offers_tls().await;
    let result = PgConnection::connect_with(&db::connect_options(
        &database(SslMode::Require),
        "postgres",
    ))
    .await;
    match (offers, result) {
        (true, Ok(mut conn)) => {
            let encrypted: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            assert!(encrypted, "a require connection is encrypted");
        }
        (false, Err(err)) => {
            let text = err.to_string();
            assert!(text.contains("TLS"), "the refusal names TLS: {text}");
        }
        (true, Err(err)) => panic!("the server offers TLS and require failed: {err}"),
        (false, Ok(_)) => panic!("a server without TLS was accepted under require"),
    }
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_its_authority_did_not_sign() {
    if !server_offers_tls().await {
        eprintln!("skipped: this machine's PostgreSQL has ssl = off");
        return;
    }
    let mut config = database(SslMode::VerifyFull);
    config.ssl_root_cert = unrelated_authority().display().to_string();
    let Err(err) = db::connect(&config).await else {
        panic!("a server certificate the configured authority did not sign was accepted");
    };
    let text = err.to_string();
    assert!(
        text.contains("TLS") || text.contains("certificate"),
        "the refusal is the certificate's: {text}"
    );
    assert!(
        text.contains("database.*"),
        "the error says where to configure it: {text}"
    );
}
