//! Sending: `channel.send.<instance>` claims the message (a send is idempotent by its id),
//! calls the plugin's `send_message` (its HTTP client checks grants and retries 429, 5xx and
//! refused connections with backoff), records the outcome with its `communication.*` event,
//! and files the sent message in the unified model.

use std::time::Duration;

use tributary_plugin_sdk::{OutboundMessage, Participant};
use tributary_proto::requests::{ApiError, ErrorCode};
use uuid::Uuid;

use crate::api::{SendOutcome, SendRequest};
use crate::model::{outbound_items, SentRecord};
use crate::publish::MeshPublisher;
use crate::routes::{ChannelInstance, RouteTable};
use crate::store::{Claim, OutboundStore};
use crate::webhook_url;

/// Sends messages through the instances in the route table.
#[derive(Debug, Clone)]
pub struct Sender {
    routes: RouteTable,
    store: OutboundStore,
    publisher: MeshPublisher,
    public_base_url: String,
    timeout: Duration,
}

impl Sender {
    /// A sender giving each send at most `timeout`; status callbacks are addressed under
    /// `public_base_url`.
    pub fn new(
        routes: RouteTable,
        store: OutboundStore,
        publisher: MeshPublisher,
        public_base_url: String,
        timeout: Duration,
    ) -> Self {
        Self {
            routes,
            store,
            publisher,
            public_base_url,
            timeout,
        }
    }

    /// The store it records in.
    pub fn store(&self) -> &OutboundStore {
        &self.store
    }

    /// Sends `request` through `instance_id`. A send that reached the provider and failed is
    /// an outcome with status `failed`, not an error; errors are for requests that cannot be
    /// sent at all (unknown instance, no recipient) and for the service's own failures.
    pub async fn send(
        &self,
        instance_id: &str,
        request: SendRequest,
    ) -> Result<SendOutcome, ApiError> {
        let instance = self.routes.instance(instance_id).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no enabled channel instance `{instance_id}`"),
            )
        })?;
        let message = self.message_of(&instance, request)?;
        let claim = self
            .store
            .claim(instance_id, &instance.channel, &message, self.timeout * 2)
            .await
            .map_err(ApiError::internal)?;
        if let Claim::Done(row) = claim {
            if row.instance_id != instance_id {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "message {} was sent through another instance, `{}`",
                        row.id, row.instance_id
                    ),
                ));
            }
            return Ok(row.outcome(true));
        }
        let sent = tokio::time::timeout(
            self.timeout,
            instance.plugin.send_message(&instance.ctx, message.clone()),
        )
        .await;
        let error = match sent {
            Ok(Ok(sent)) => {
                let record = SentRecord {
                    provider_message_id: sent.provider_message_id,
                    sender: sent.sender.map(|p| p.address),
                    status: sent.status,
                    error: None,
                    sent_at: sent.sent_at,
                    status_at: sent.sent_at,
                    message,
                };
                let row = self.store.sent(&record).await.map_err(ApiError::internal)?;
                tracing::info!(instance = instance_id, message = %row.id, provider_id = %record.provider_message_id, "Message sent.");
                self.file(&instance, &record).await;
                return Ok(row.outcome(false));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "the provider did not answer within {} s (channel.send_timeout_secs)",
                self.timeout.as_secs()
            ),
        };
        tracing::warn!(instance = instance_id, message = %message.id, error, "A message could not be sent.");
        let row = self
            .store
            .failed(&message, &error)
            .await
            .map_err(ApiError::internal)?;
        Ok(row.outcome(false))
    }

    fn message_of(
        &self,
        instance: &ChannelInstance,
        request: SendRequest,
    ) -> Result<OutboundMessage, ApiError> {
        let bad = |m: &str| ApiError::new(ErrorCode::BadRequest, m);
        let recipients: Vec<Participant> = request
            .to
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .map(Participant::new)
            .collect();
        if recipients.is_empty() && request.conversation_id.is_none() {
            return Err(bad(
                "`to` must name at least one recipient (or give `conversation_id`)",
            ));
        }
        if request.text.trim().is_empty() {
            return Err(bad("`text` must not be empty"));
        }
        let accepts_webhooks = instance.grants().check_inbound().is_ok();
        Ok(OutboundMessage {
            id: request.id.unwrap_or_else(Uuid::now_v7),
            conversation_id: request.conversation_id,
            recipients,
            subject: request.subject,
            text: request.text,
            in_reply_to: request.in_reply_to,
            status_callback_url: accepts_webhooks.then(|| {
                webhook_url(
                    &self.public_base_url,
                    &instance.channel,
                    &instance.instance_id,
                )
            }),
        })
    }

    /// Files a sent message (or its new status) in the unified model; a failure is logged,
    /// as the send itself is done and recorded.
    pub async fn file(&self, instance: &ChannelInstance, record: &SentRecord) {
        let items = outbound_items(&instance.channel, &instance.instance_id, record);
        if let Err(e) = self
            .publisher
            .items(instance, &record.message.id.to_string(), &items)
            .await
        {
            tracing::warn!(instance = %instance.instance_id, message = %record.message.id, error = %e, "Cannot file a sent message in the unified model.");
        }
    }
}
