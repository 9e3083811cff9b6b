//! Handling verified webhooks from the `CHANNEL_INBOUND` stream: the plugin's
//! `handle_incoming` turns each into messages and delivery statuses. A message is announced
//! as `communication.MessageReceived` and filed, with its conversation, in the unified model
//! (through the ETL); a delivery status updates the sent message it is about. Only then is the
//! webhook acked, so a crash at any point means it is handled again; the events and items it
//! publishes carry ids derived from the delivery, which JetStream and the ETL recognise, so
//! it is not announced twice.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::Message;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tributary_kit::backoff::Backoff;
use tributary_kit::dead_letter::DeadLetters;
use tributary_plugin_sdk::{DeliveryStatusUpdate, InboundMessage, IncomingEvent};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::{CommunicationEvent, EventKind};

use crate::ingress::StoredWebhook;
use crate::model::{inbound_items, message_received, stable_event_id};
use crate::outbound::Sender;
use crate::publish::{MeshPublisher, PublishError};
use crate::received::ReceivedMessages;
use crate::routes::{ChannelInstance, RouteTable};
use crate::store::StatusChange;

/// Why handling a webhook stopped.
enum Failure {
    /// It may work later (NATS or PostgreSQL unreachable, the provider busy, the instance
    /// not served here yet): delivered again after a backoff, dead-lettered after
    /// `channel.max_deliver` deliveries.
    Retry(String),
    /// It never will: dead-lettered at once.
    Never(String),
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        Failure::Retry(e.to_string())
    }
}

/// Handles the webhooks of the inbound stream.
#[derive(Debug, Clone)]
pub struct InboundHandler {
    routes: RouteTable,
    publisher: MeshPublisher,
    sender: Sender,
    dead_letters: DeadLetters,
    max_deliver: i64,
}

impl InboundHandler {
    /// A handler publishing with `publisher`, recording delivery statuses through `sender`'s
    /// store, and sending to `dead_letters` what fails `max_deliver` times.
    pub fn new(
        routes: RouteTable,
        publisher: MeshPublisher,
        sender: Sender,
        dead_letters: DeadLetters,
        max_deliver: i64,
    ) -> Self {
        Self {
            routes,
            publisher,
            sender,
            dead_letters,
            max_deliver,
        }
    }

    /// Handles webhooks from `consumer`, `concurrency` at a time, until `shutdown`; those in
    /// hand are finished first.
    pub async fn run(
        self,
        consumer: Consumer<pull::Config>,
        concurrency: usize,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        while !shutdown.is_cancelled() {
            let messages = match consumer.messages().await {
                Ok(messages) => messages,
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, retry_in = ?wait, "Cannot pull webhooks; retrying.");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            backoff.reset();
            messages
                .take_until(shutdown.clone().cancelled_owned())
                .for_each_concurrent(concurrency, |message| async {
                    match message {
                        Ok(message) => self.handle(message).await,
                        Err(e) => tracing::debug!(error = %e, "Pull consumer hiccup."),
                    }
                })
                .await;
        }
    }

    /// Handles one stored webhook and acks, retries or dead-letters it.
    pub async fn handle(&self, message: Message) {
        // Anything but a stored webhook's subject is refused unread (issue 27, finding 2).
        if !self.dead_letters.accepts(&message) {
            self.dead_letters.refuse(&message).await;
            return;
        }
        match self.process(&message).await {
            Ok(()) => {
                if let Err(e) = message.ack().await {
                    tracing::warn!(error = %e, "Cannot ack a handled webhook; it will come again and be recognised.");
                }
            }
            Err(Failure::Never(reason)) => {
                self.dead_letters.send(&message, &reason).await;
            }
            Err(Failure::Retry(reason)) => {
                self.dead_letters
                    .retry_or_give_up(
                        &message,
                        self.max_deliver,
                        "A webhook was not handled",
                        reason,
                        retry_wait,
                    )
                    .await;
            }
        }
    }

    async fn process(&self, message: &Message) -> Result<(), Failure> {
        let stored: StoredWebhook = serde_json::from_slice(&message.payload)
            .map_err(|e| Failure::Never(format!("not a stored webhook: {e}")))?;
        let instance = self.routes.instance(&stored.instance_id).ok_or_else(|| {
            Failure::Retry(format!(
                "channel instance `{}` is not enabled in this channel service",
                stored.instance_id
            ))
        })?;
        let received_at = stored.webhook.received_at;
        let events = instance
            .plugin
            .handle_incoming(&instance.ctx, stored.webhook)
            .await
            .map_err(|e| {
                let reason = format!(
                    "the {} plugin cannot handle the webhook: {e}",
                    stored.channel
                );
                if e.is_transient() {
                    Failure::Retry(reason)
                } else {
                    instance.report_failure(reason.clone());
                    Failure::Never(reason)
                }
            })?;
        instance.report_success();
        for event in events {
            match event {
                IncomingEvent::Message(m) => self.received(&instance, m, received_at).await?,
                IncomingEvent::DeliveryStatus(s) => self.status(&instance, s).await?,
            }
        }
        Ok(())
    }

    async fn received(
        &self,
        instance: &ChannelInstance,
        message: InboundMessage,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        if message.provider_message_id.trim().is_empty() {
            return Err(Failure::Never(format!(
                "the {} plugin gave a message without a provider message id",
                instance.channel
            )));
        }
        let kind = EventKind::Communication(CommunicationEvent::MessageReceived);
        let mut envelope = Envelope::new(
            kind,
            EventSource::new("channel", Some(instance.instance_id.clone())),
            None,
            message_received(&instance.channel, &instance.instance_id, &message),
        );
        // The provider's id, not the delivery, makes the message: a replay after JetStream's
        // duplicate window (a day) gets the first receipt's id and time, and once announced
        // is not announced again (issue 27, Low).
        let receipts = ReceivedMessages::new(self.sender.store().pool().clone());
        let receipt = receipts
            .receive(
                &instance.instance_id,
                &message.provider_message_id,
                stable_event_id(
                    received_at,
                    &[&instance.instance_id, &message.provider_message_id],
                ),
                received_at,
            )
            .await
            .map_err(|e| Failure::Retry(format!("cannot record an inbound message: {e}")))?;
        if receipt.announced {
            metrics::counter!("tributary_channel_replays_total").increment(1);
            tracing::info!(instance = %instance.instance_id, provider_id = %message.provider_message_id, first_received_at = %receipt.received_at, "A message received before came again; it is not announced again.");
            return Ok(());
        }
        envelope.id = receipt.event_id;
        envelope.time = receipt.received_at;
        let duplicate = self.publisher.event(&envelope).await?;
        if duplicate {
            tracing::debug!(instance = %instance.instance_id, provider_id = %message.provider_message_id, "MessageReceived was published before; handled again after a redelivery.");
        }
        let items = inbound_items(&instance.channel, &instance.instance_id, &message);
        self.publisher
            .items(instance, &envelope.id.to_string(), &items)
            .await?;
        receipts
            .announced(&instance.instance_id, &message.provider_message_id)
            .await
            .map_err(|e| Failure::Retry(format!("cannot record an inbound message: {e}")))?;
        Ok(())
    }

    async fn status(
        &self,
        instance: &ChannelInstance,
        update: DeliveryStatusUpdate,
    ) -> Result<(), Failure> {
        let row = self
            .sender
            .store()
            .status_reported(
                &instance.instance_id,
                &update.provider_message_id,
                &update.status,
                update.error.as_deref(),
                update.at,
            )
            .await
            .map_err(|e| Failure::Retry(format!("cannot record a delivery status: {e}")))?;
        match row {
            StatusChange::Applied(row) => {
                if let Some(record) = row.sent_record() {
                    self.sender.file(instance, &record).await;
                }
                Ok(())
            }
            StatusChange::Unchanged => Ok(()),
            // A status callback can overtake the record of its send: try again a few times
            // before dead-lettering it.
            StatusChange::UnknownMessage => Err(Failure::Retry(format!(
                "no message sent through instance `{}` has provider id `{}`",
                instance.instance_id, update.provider_message_id
            ))),
        }
    }
}

/// The wait before delivery `delivered + 1`: 1 s, doubling, at most a minute.
fn retry_wait(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(60))
}
