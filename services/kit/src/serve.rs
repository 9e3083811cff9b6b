//! The services' HTTP server: axum's router on hyper, with what `axum::serve` leaves out.
//!
//! `axum::serve` gives hyper no timer, so hyper's header read timeout never fires: a client
//! that opens connections and sends its request headers a byte at a time (or never finishes
//! them) holds a connection and a task each for as long as it likes. Here every HTTP/1
//! connection must deliver its request headers within `http_header_read_timeout_ms`, or it is
//! closed. On shutdown the listener closes at once and open connections finish their requests
//! (graceful), as with `axum::serve`.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long to wait before accepting again after `accept` failed (out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` resolves; then waits up to `drain` for open
/// connections to finish. Each connection's request headers must arrive within
/// `header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot accept an HTTP connection.");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "An HTTP connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Open HTTP connections did not finish within the shutdown timeout.");
    }
}

/// An HTTP server on a free loopback port, serving a router until it is dropped: the plugin
/// kit's fixture server and recording proxy, and the remote APIs tests stand up.
#[derive(Debug)]
pub struct LocalServer {
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LocalServer {
    /// Serves `router` on `127.0.0.1:<a free port>`.
    pub async fn start(router: Router) -> std::io::Result<Self> {
        Self::serve_on(TcpListener::bind("127.0.0.1:0").await?, router)
    }

    /// Serves `router` on `listener`, bound already (when the router must know its address).
    pub fn serve_on(listener: TcpListener, router: Router) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            router,
            Duration::from_secs(10),
            Duration::from_secs(1),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(LocalServer { addr, _stop: stop })
    }

    /// Its address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn started(
        timeout: Duration,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "hello" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(
            listener,
            router,
            timeout,
            Duration::from_secs(5),
            async {
                let _ = stopped.await;
            },
        ));
        (addr, stop)
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let (addr, _stop) = started(Duration::from_millis(300)).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let began = Instant::now();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let mut rest = Vec::new();
        // Without the timeout this read waits for ever: the server keeps the connection.
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the server still holds a connection whose headers never came"
        );
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_millis(250),
            "cut off after {waited:?}, before the timeout"
        );
        assert!(
            waited < Duration::from_secs(3),
            "cut off only after {waited:?}"
        );
        let answer = String::from_utf8_lossy(&rest);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_whole_request_is_answered_and_shutdown_stops_the_server() {
        let (addr, stop) = started(Duration::from_millis(300)).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );
    }
}
