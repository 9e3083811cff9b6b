//! Publishing to JetStream on behalf of a channel instance, each publish acknowledged: the
//! `communication.*` events of inbound messages, and the conversation and message items the
//! ETL writes into the unified model (only those the instance's `data:write` grants allow).

use async_nats::jetstream;
use async_nats::HeaderMap;
use serde::Serialize;
use tributary_proto::envelope::Envelope;
use tributary_proto::{ConnectorItem, Subjects};

use crate::routes::ChannelInstance;

/// A publish JetStream did not acknowledge.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish to `{subject}`: {reason}")]
pub struct PublishError {
    /// The subject.
    pub subject: String,
    /// Why.
    pub reason: String,
}

/// Publishes and waits for JetStream's acknowledgement.
#[derive(Debug, Clone)]
pub struct MeshPublisher {
    jetstream: jetstream::Context,
    subjects: Subjects,
}

impl MeshPublisher {
    /// A publisher on `jetstream`, under `subjects`' prefix.
    pub fn new(jetstream: jetstream::Context, subjects: Subjects) -> Self {
        Self {
            jetstream,
            subjects,
        }
    }

    /// The subjects it publishes under.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Vec<u8>,
    ) -> Result<bool, PublishError> {
        let fail = |reason: String| PublishError {
            subject: subject.clone(),
            reason,
        };
        let ack = self
            .jetstream
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(ack.duplicate)
    }

    /// Publishes an event; whether JetStream had it already (same envelope id).
    pub async fn event<T: Serialize>(&self, envelope: &Envelope<T>) -> Result<bool, PublishError> {
        let subject = self.subjects.qualify(&envelope.event_type);
        let payload = envelope.to_bytes().map_err(|e| PublishError {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
        self.publish(subject, envelope.headers(), payload).await
    }

    /// Publishes `items` of `instance`, in order, to its item stream for the ETL, as part of
    /// `run` (the inbound event or sent message they file: handling it again publishes them
    /// under the same message ids). An item of an entity type the instance may not write is
    /// left out, with a warning naming the missing permission.
    pub async fn items(
        &self,
        instance: &ChannelInstance,
        run: &str,
        items: &[ConnectorItem],
    ) -> Result<(), PublishError> {
        let subject = self.subjects.connector_items(&instance.instance_id);
        for item in items {
            if let Err(denied) = instance.grants().check_write(item.entity_type) {
                tracing::warn!(instance = %instance.instance_id, error = %denied, "Not writing a {} to the unified model.", item.entity_type);
                continue;
            }
            let payload = serde_json::to_vec(item).map_err(|e| PublishError {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
            self.publish(subject.clone(), item.headers(run), payload)
                .await?;
        }
        Ok(())
    }
}
