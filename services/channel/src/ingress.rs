//! The webhook routes: `POST` (and, for handshakes, `GET`) `/webhooks/<channel>/<instance>`.
//! The route is found before the body is read: a request to a route not served is 404 at
//! once, whatever it sends. A body over `channel.max_body_bytes` is 413, one that takes longer
//! than `channel.webhook_body_timeout_ms` to arrive is 408, and beyond
//! `channel.max_concurrent_webhooks` requests in flight the next is 503 at once. The
//! instance's plugin verifies the signature first: a request it refuses gets its status (401
//! for a bad signature) and is stored nowhere. An accepted one, with only the headers its
//! plugin reads when it handles it (no signature, no secret token), is published to
//! `channel.inbound.<channel>.<instance>` with the provider's delivery id as `Nats-Msg-Id`,
//! and answered 200 only once JetStream has acknowledged it; JetStream recognises a
//! redelivery by that id, and it is answered 200 without being stored again.

use std::sync::Arc;

use async_nats::jetstream;
use async_nats::HeaderMap as NatsHeaders;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tributary_kit::config::ChannelConfig;
use tributary_kit::timeline::TimelineRecorder;
use tributary_plugin_sdk::{IncomingWebhook, WebhookVerdict};
use tributary_proto::envelope::MSG_ID_HEADER;
use tributary_proto::timeline::{TimelineEntry, TimelineKind, TimelineStatus};
use tributary_proto::Subjects;

use crate::routes::RouteTable;

/// What one webhook may cost before it is refused.
#[derive(Debug, Clone)]
pub struct WebhookLimits {
    /// The largest body, in bytes.
    pub max_body_bytes: usize,
    /// How long the body may take to arrive once the route is known.
    pub body_timeout: std::time::Duration,
    /// Requests read and verified at the same time.
    pub max_in_flight: usize,
}

impl WebhookLimits {
    /// The limits `settings` set.
    pub fn of(settings: &ChannelConfig) -> Self {
        Self {
            max_body_bytes: settings.max_body_bytes,
            body_timeout: settings.webhook_body_timeout(),
            max_in_flight: settings.max_concurrent_webhooks,
        }
    }
}

/// A verified webhook as it is kept in the `CHANNEL_INBOUND` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredWebhook {
    /// The route's channel name.
    pub channel: String,
    /// The instance it was addressed to.
    pub instance_id: String,
    /// The provider's id of the delivery.
    pub delivery_id: String,
    /// The request.
    pub webhook: IncomingWebhook,
}

/// The `Nats-Msg-Id` of a delivery: JetStream drops a second one within the inbound
/// stream's duplicate window (a day).
pub fn delivery_msg_id(instance_id: &str, delivery_id: &str) -> String {
    format!("{instance_id}:{delivery_id}")
}

/// What the webhook handler needs.
#[derive(Debug, Clone)]
pub struct Ingress {
    routes: RouteTable,
    jetstream: jetstream::Context,
    subjects: Subjects,
    public_base_url: Arc<str>,
    limits: WebhookLimits,
    /// One permit per request being read and verified, [`WebhookLimits::max_in_flight`] in all.
    in_flight: Arc<Semaphore>,
    /// Where each webhook addressed to a served route is told on its instance's timeline.
    timeline: Option<Arc<TimelineRecorder>>,
}

impl Ingress {
    /// Serves `routes`, storing into `jetstream`; URLs are rebuilt under `public_base_url`;
    /// each request within `limits`.
    pub fn new(
        routes: RouteTable,
        jetstream: jetstream::Context,
        subjects: Subjects,
        public_base_url: &str,
        limits: WebhookLimits,
    ) -> Self {
        Self {
            routes,
            jetstream,
            subjects,
            public_base_url: Arc::from(public_base_url),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            limits,
            timeline: None,
        }
    }

    /// The same ingress, telling each webhook addressed to a served route on its instance's
    /// timeline: accepted, a repeat, or refused with the reason (never the body or a header).
    pub fn with_timeline(mut self, timeline: Arc<TimelineRecorder>) -> Self {
        self.timeline = Some(timeline);
        self
    }

    /// Tells `instance_id`'s timeline about a webhook: `status` is the answer given.
    async fn tell(&self, instance_id: &str, answered: StatusCode, summary: String) {
        let Some(timeline) = &self.timeline else {
            return;
        };
        let status = match answered.as_u16() {
            200..=399 => TimelineStatus::Ok,
            _ => TimelineStatus::Error,
        };
        let line = TimelineEntry::now(instance_id, TimelineKind::Webhook, status, summary)
            .with("status", answered.as_u16());
        timeline.record(line).await;
    }

    /// Reads `body` within the limits: 413 when it is too large, 408 when it is too slow.
    async fn read(&self, body: Body) -> Result<Bytes, Response> {
        let limits = &self.limits;
        match tokio::time::timeout(
            limits.body_timeout,
            axum::body::to_bytes(body, limits.max_body_bytes),
        )
        .await
        {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(_)) => Err(answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body is over {} bytes, or was cut off",
                    limits.max_body_bytes
                ),
            )),
            Err(_) => Err(answer(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} ms",
                    limits.body_timeout.as_millis()
                ),
            )),
        }
    }
}

/// The webhook routes.
pub fn router(ingress: Ingress) -> Router {
    // Shared behind one `Arc`: axum clones the state for every request, and a cloned
    // `Ingress` would copy the JetStream context's API prefix and bump a dozen counters.
    Router::new()
        .route("/webhooks/{channel}/{instance}", any(receive))
        .with_state(Arc::new(ingress))
}

/// The answer to a webhook route that is not served, whatever the reason.
const ROUTE_NOT_SERVED: &str = "no such webhook route";

fn answer(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

async fn receive(
    State(ingress): State<Arc<Ingress>>,
    Path((channel, instance_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(_permit) = ingress.in_flight.clone().try_acquire_owned() else {
        metrics::counter!("tributary_channel_webhooks_total", "outcome" => "overloaded")
            .increment(1);
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many webhooks at once; try again",
        );
    };
    if method != Method::POST && method != Method::GET {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "webhooks are POST (or GET for a handshake)",
        );
    }
    let Some(instance) = ingress
        .routes
        .route(&channel, &instance_id)
        .filter(|i| i.grants().check_inbound().is_ok())
    else {
        // The same words for every route not served (never existed, disabled, another
        // channel's name, a channel that takes no webhooks), echoing nothing of the path: a
        // prober learns nothing of which instances exist.
        return answer(StatusCode::NOT_FOUND, ROUTE_NOT_SERVED);
    };
    // Only now, with a route that takes it, is the body read.
    let body = match ingress.read(body).await {
        Ok(body) => body,
        Err(refused) => {
            let summary = format!(
                "refused ({}): the body was too large or too slow",
                refused.status().as_u16()
            );
            ingress.tell(&instance_id, refused.status(), summary).await;
            return refused;
        }
    };
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let mut webhook = IncomingWebhook {
        method: method.as_str().to_owned(),
        url: format!("{}{path_and_query}", ingress.public_base_url),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        received_at: Utc::now(),
    };
    let delivery_id = match instance.plugin.verify(&instance.ctx, &webhook).await {
        Ok(WebhookVerdict::Accept { delivery_id }) => delivery_id,
        Ok(WebhookVerdict::Respond(response)) => {
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            return (
                status,
                [(header::CONTENT_TYPE, response.content_type)],
                response.body,
            )
                .into_response();
        }
        Err(rejection) => {
            metrics::counter!("tributary_channel_webhooks_total", "outcome" => "rejected")
                .increment(1);
            tracing::info!(channel, instance = %instance_id, status = rejection.status, reason = %rejection.reason, "Refused a webhook.");
            // The hub's fault, not the caller's (a trap, a misconfigured instance): the
            // instance's last error says so.
            if rejection.status >= 500 {
                instance.report_failure(format!(
                    "a webhook could not be verified: {}",
                    rejection.reason
                ));
            }
            let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::UNAUTHORIZED);
            let summary = format!("refused ({}): {}", status.as_u16(), rejection.reason);
            ingress.tell(&instance_id, status, summary).await;
            return answer(status, &rejection.reason);
        }
    };
    let msg_id = delivery_msg_id(&instance_id, &delivery_id);
    let keep = instance.plugin.headers_to_keep();
    webhook
        .headers
        .retain(|(name, _)| keep.iter().any(|k| k.eq_ignore_ascii_case(name)));
    let stored = StoredWebhook {
        channel: channel.clone(),
        instance_id: instance_id.clone(),
        delivery_id,
        webhook,
    };
    let payload = match serde_json::to_vec(&stored) {
        Ok(payload) => payload,
        Err(e) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot encode the webhook: {e}"),
            )
        }
    };
    let mut nats_headers = NatsHeaders::new();
    nats_headers.insert(MSG_ID_HEADER, msg_id.as_str());
    tributary_proto::trace_context::inject_current(&mut nats_headers);
    let subject = ingress.subjects.channel_inbound(&channel, &instance_id);
    let stored = match ingress
        .jetstream
        .publish_with_headers(subject, nats_headers, payload.into())
        .await
    {
        Ok(ack) => ack.await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match stored {
        Ok(ack) if ack.duplicate => {
            metrics::counter!("tributary_channel_webhooks_total", "outcome" => "duplicate")
                .increment(1);
            tracing::debug!(channel, instance = %instance_id, msg_id, "A redelivered webhook; it was received before.");
            let summary = "accepted: a repeat of one received before, kept once".to_owned();
            ingress.tell(&instance_id, StatusCode::OK, summary).await;
            StatusCode::OK.into_response()
        }
        Ok(_) => {
            metrics::counter!("tributary_channel_webhooks_total", "outcome" => "accepted")
                .increment(1);
            ingress
                .tell(&instance_id, StatusCode::OK, "accepted".to_owned())
                .await;
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::warn!(channel, instance = %instance_id, error = %e, "Cannot store a verified webhook; the provider will retry.");
            let summary =
                "refused (503): it could not be stored; the provider will retry".to_owned();
            ingress
                .tell(&instance_id, StatusCode::SERVICE_UNAVAILABLE, summary)
                .await;
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "the webhook cannot be stored right now; try again",
            )
        }
    }
}
