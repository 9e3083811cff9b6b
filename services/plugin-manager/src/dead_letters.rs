//! The dead letters of every stream (`DEAD_LETTERS`, `tributary_proto::dead_letter`): listed
//! with their reasons, shown with their payloads, replayed after a fix or discarded. The admin
//! API (`/api/v1/dead-letters`) and the console's page both work through [`DeadLetterBox`].
//!
//! A replay publishes the payload, as it was, on the subject it was first published on, and
//! deletes the dead letter once JetStream has stored it. The consumer then handles it as any
//! other message: the ETL's upsert by source record and version stores it once however often
//! it comes, and a message that fails again is dead-lettered again with its new reason. The
//! replay carries `Nats-Msg-Id: replay-<dead letter's sequence>`, so a replay sent twice
//! within the stream's duplicate window (a double click, a retried request) is stored once.
//!
//! Only what a consumer would take is replayed: the original subject must be one the consumer
//! is for ([`ConsumerKey::accepts`]), and a dead letter kept without its payload (a message on
//! a subject the consumer is not for, dropped unread) cannot be. The search indexer's dead
//! letters are `data.*` events every subscriber has had: publishing one again would announce
//! the change twice, so they are mended by `tributary search reindex` (which indexes every
//! stored record again) and then discarded.

use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::{self, message::StreamMessage};
use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tributary_proto::dead_letter;
use tributary_proto::envelope::MSG_ID_HEADER;
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::streams::{ConsumerKey, StreamKey};
use tributary_proto::Subjects;

/// The most dead letters one page lists.
pub const MAX_PAGE: u32 = 200;
/// The dead letters a page lists when it does not say.
pub const DEFAULT_PAGE: u32 = 50;
/// How much of a payload a listing shows; the whole of it is in [`DeadLetterBox::get`].
pub const PREVIEW_BYTES: usize = 2048;
/// The header a replayed message carries: the dead letter's sequence it was replayed from.
pub const REPLAYED_FROM_HEADER: &str = "Tributary-Replayed-From";

/// One dead letter: why its message could never be processed, where it came from, and its
/// payload as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Its sequence in `DEAD_LETTERS`: what replay and discard name.
    pub sequence: u64,
    /// The durable consumer that gave up on it (`etl-items`, `channel-inbound`,
    /// `search-indexer`).
    pub consumer: String,
    /// Why, in one line.
    pub reason: String,
    /// The subject it was first published on (without the deployment's prefix).
    pub original_subject: String,
    /// Its sequence in the stream it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_sequence: Option<u64>,
    /// How many times it was delivered before it was given up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u64>,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
    /// Its payload's size in bytes.
    pub payload_bytes: usize,
    /// Its payload as text (invalid UTF-8 replaced); in a listing, the first
    /// [`PREVIEW_BYTES`] of it.
    pub payload: String,
    /// Whether [`Self::payload`] is cut short.
    pub payload_truncated: bool,
    /// Why it cannot be replayed, when it cannot (it may still be discarded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_replayable: Option<String>,
}

/// Which dead letters a listing, a replay of all or a discard of all is about.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema, utoipa::IntoParams,
)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterFilter {
    /// Only this consumer's (`etl-items`, `channel-inbound`, `search-indexer`); empty or absent: every consumer's.
    #[serde(default)]
    #[schema(pattern = "^(etl-items|search-indexer|channel-inbound|timeline)?$")]
    #[param(pattern = "^(etl-items|search-indexer|channel-inbound|timeline)?$")]
    pub consumer: Option<String>,
}

/// A page of dead letters, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this consumer's (`etl-items`, `channel-inbound`, `search-indexer`); empty or absent: every consumer's.
    #[serde(default)]
    #[param(pattern = "^(etl-items|search-indexer|channel-inbound|timeline)?$")]
    pub consumer: Option<String>,
    /// Those after this sequence (the last page's `next_after`).
    #[serde(default)]
    pub after: Option<u64>,
    /// How many, 1 to 200 (50 when not given).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of dead letters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    /// How many dead letters the filter matches in all.
    pub total: u64,
    /// This page's, oldest first, payloads cut to [`PREVIEW_BYTES`].
    pub dead_letters: Vec<DeadLetter>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// A dead letter replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replayed {
    /// The dead letter's sequence (it is gone now).
    pub sequence: u64,
    /// The subject it was published on again.
    pub subject: String,
    /// Its new sequence in the stream it went back to.
    pub stream_sequence: u64,
    /// Whether JetStream had it already (a replay of the same dead letter within the
    /// duplicate window): stored once all the same.
    pub duplicate: bool,
}

/// One dead letter a bulk replay left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeftAlone {
    /// The dead letter's sequence.
    pub sequence: u64,
    /// Why it was not replayed.
    pub reason: String,
}

/// What a replay or a discard of every dead letter of a filter did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    /// The dead letters replayed (or discarded), by sequence.
    pub done: Vec<u64>,
    /// Those left as they were, with why.
    pub left: Vec<LeftAlone>,
}

/// Why a dead letter could not be listed, replayed or discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    /// No dead letter with that sequence (replayed or discarded already, or never there).
    #[error("no dead letter {0}; it was replayed or discarded already, or never was")]
    NotFound(u64),
    /// A filter or page that does not make sense.
    #[error("{0}")]
    BadRequest(String),
    /// It is there but cannot be replayed: why.
    #[error("dead letter {sequence} cannot be replayed: {reason}")]
    NotReplayable {
        /// Its sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// JetStream did not do what was asked.
    #[error("the dead-letter stream cannot be reached: {0}")]
    Unavailable(String),
}

impl From<DeadLetterError> for ApiError {
    fn from(e: DeadLetterError) -> Self {
        let code = match &e {
            DeadLetterError::NotFound(_) => ErrorCode::NotFound,
            DeadLetterError::BadRequest(_) => ErrorCode::BadRequest,
            DeadLetterError::NotReplayable { .. } => ErrorCode::Conflict,
            DeadLetterError::Unavailable(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The dead-letter stream, read, replayed from and pruned by the plugin manager.
#[derive(Debug, Clone)]
pub struct DeadLetterBox {
    jetstream: jetstream::Context,
    subjects: Subjects,
}

impl DeadLetterBox {
    /// The dead letters of the deployment `subjects` names, through `jetstream`.
    pub fn new(jetstream: jetstream::Context, subjects: Subjects) -> Self {
        Self {
            jetstream,
            subjects,
        }
    }

    /// The stream, without asking JetStream anything yet.
    async fn stream(&self) -> Result<Stream<()>, DeadLetterError> {
        self.jetstream
            .get_stream_no_info(StreamKey::DeadLetters.name(&self.subjects))
            .await
            .map_err(unavailable)
    }

    /// The first dead letter on `filter` at or after sequence `from`, if any.
    async fn next_from(
        stream: &Stream<()>,
        filter: &str,
        from: u64,
    ) -> Result<Option<StreamMessage>, DeadLetterError> {
        match stream
            .get_first_raw_message_by_subject(filter, from.max(1))
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The subject a filter names: one consumer's `deadletter.<consumer>`, or every one.
    fn filter_subject(&self, consumer: Option<&str>) -> Result<String, DeadLetterError> {
        match consumer.map(str::trim).filter(|c| !c.is_empty()) {
            None => Ok(self.subjects.all_dead_letters()),
            Some(name) => {
                let known = ConsumerKey::ALL
                    .iter()
                    .any(|key| key.durable_name() == name);
                if !known {
                    let names: Vec<&str> =
                        ConsumerKey::ALL.iter().map(|k| k.durable_name()).collect();
                    return Err(DeadLetterError::BadRequest(format!(
                        "`consumer` must be one of {}, not `{name}`",
                        names.join(", ")
                    )));
                }
                Ok(self.subjects.dead_letter(name))
            }
        }
    }

    /// How many dead letters wait, of one consumer or of all.
    pub async fn count(&self, consumer: Option<&str>) -> Result<u64, DeadLetterError> {
        let filter = self.filter_subject(consumer)?;
        let stream = self.stream().await?;
        if consumer.is_none() {
            let info = stream.get_info().await.map_err(unavailable)?;
            return Ok(info.state.messages);
        }
        let counts = stream
            .info_with_subjects(filter)
            .await
            .map_err(unavailable)?;
        let per_subject: Vec<(String, usize)> = counts.try_collect().await.map_err(unavailable)?;
        Ok(per_subject.iter().map(|(_, n)| *n as u64).sum())
    }

    /// A page of dead letters, oldest first, payloads cut to [`PREVIEW_BYTES`].
    pub async fn list(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, DeadLetterError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DeadLetterError::BadRequest(format!(
                "`limit` must be 1 to {MAX_PAGE}, not {limit}"
            )));
        }
        let filter = self.filter_subject(query.consumer.as_deref())?;
        let total = self.count(query.consumer.as_deref()).await?;
        let stream = self.stream().await?;
        let mut next = query.after.map_or(0, |after| after.saturating_add(1));
        let mut dead_letters = Vec::new();
        while dead_letters.len() < limit as usize {
            let Some(message) = Self::next_from(&stream, &filter, next).await? else {
                break;
            };
            next = message.sequence.saturating_add(1);
            dead_letters.push(self.read(&message, Some(PREVIEW_BYTES)));
        }
        let next_after = match dead_letters.len() == limit as usize {
            true => dead_letters.last().map(|d| d.sequence),
            false => None,
        };
        Ok(DeadLetterPage {
            total,
            dead_letters,
            next_after,
        })
    }

    /// One dead letter, with the whole of its payload.
    pub async fn get(&self, sequence: u64) -> Result<DeadLetter, DeadLetterError> {
        let stream = self.stream().await?;
        let message = self.message(&stream, sequence).await?;
        Ok(self.read(&message, None))
    }

    async fn message(
        &self,
        stream: &Stream<()>,
        sequence: u64,
    ) -> Result<StreamMessage, DeadLetterError> {
        match Self::next_from(stream, &self.subjects.all_dead_letters(), sequence).await? {
            Some(message) if message.sequence == sequence => Ok(message),
            _ => Err(DeadLetterError::NotFound(sequence)),
        }
    }

    /// Publishes dead letter `sequence`'s payload again on its original subject and, once
    /// JetStream has stored it, deletes the dead letter; logged as done by `actor`.
    pub async fn replay(&self, sequence: u64, actor: &str) -> Result<Replayed, DeadLetterError> {
        let stream = self.stream().await?;
        let message = self.message(&stream, sequence).await?;
        self.replay_message(&stream, &message, actor).await
    }

    async fn replay_message(
        &self,
        stream: &Stream<()>,
        message: &StreamMessage,
        actor: &str,
    ) -> Result<Replayed, DeadLetterError> {
        let sequence = message.sequence;
        let letter = self.read(message, Some(0));
        if let Some(reason) = letter.not_replayable {
            return Err(DeadLetterError::NotReplayable { sequence, reason });
        }
        let subject = self.subjects.qualify(&letter.original_subject);
        let mut headers = HeaderMap::new();
        headers.insert(MSG_ID_HEADER, format!("replay-{sequence}").as_str());
        headers.insert(REPLAYED_FROM_HEADER, sequence.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, message.payload.clone())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Self::delete(stream, sequence).await?;
        tracing::info!(
            sequence,
            actor,
            subject = %letter.original_subject,
            stream_sequence = ack.sequence,
            duplicate = ack.duplicate,
            "Dead letter replayed."
        );
        Ok(Replayed {
            sequence,
            subject: letter.original_subject,
            stream_sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Deletes dead letter `sequence` without replaying it; logged as done by `actor`.
    pub async fn discard(&self, sequence: u64, actor: &str) -> Result<(), DeadLetterError> {
        let stream = self.stream().await?;
        self.message(&stream, sequence).await?;
        Self::discard_message(&stream, sequence, actor).await
    }

    async fn discard_message(
        stream: &Stream<()>,
        sequence: u64,
        actor: &str,
    ) -> Result<(), DeadLetterError> {
        Self::delete(stream, sequence).await?;
        tracing::info!(sequence, actor, "Dead letter discarded.");
        Ok(())
    }

    async fn delete(stream: &Stream<()>, sequence: u64) -> Result<(), DeadLetterError> {
        stream
            .delete_message(sequence)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Replays every replayable dead letter of `filter`, oldest first; the others are left,
    /// each with why.
    pub async fn replay_all(
        &self,
        filter: &DeadLetterFilter,
        actor: &str,
    ) -> Result<BulkOutcome, DeadLetterError> {
        self.each(filter, Bulk::Replay, actor).await
    }

    /// Discards every dead letter of `filter`.
    pub async fn discard_all(
        &self,
        filter: &DeadLetterFilter,
        actor: &str,
    ) -> Result<BulkOutcome, DeadLetterError> {
        self.each(filter, Bulk::Discard, actor).await
    }

    /// Does `bulk` to every dead letter of `filter` there is now, oldest first, each read
    /// once. One dead-lettered again during a replay comes after the last there was when it
    /// began, and is left for another time.
    async fn each(
        &self,
        filter: &DeadLetterFilter,
        bulk: Bulk,
        actor: &str,
    ) -> Result<BulkOutcome, DeadLetterError> {
        let subject = self.filter_subject(filter.consumer.as_deref())?;
        let stream = self.stream().await?;
        let last = stream
            .get_info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        let mut outcome = BulkOutcome::default();
        let mut next = 1;
        while let Some(message) = Self::next_from(&stream, &subject, next).await? {
            let sequence = message.sequence;
            if sequence > last {
                break;
            }
            next = sequence.saturating_add(1);
            let done = match bulk {
                Bulk::Replay => self
                    .replay_message(&stream, &message, actor)
                    .await
                    .map(|_| ()),
                Bulk::Discard => Self::discard_message(&stream, sequence, actor).await,
            };
            match done {
                Ok(()) => outcome.done.push(sequence),
                Err(DeadLetterError::Unavailable(e)) => {
                    return Err(DeadLetterError::Unavailable(e))
                }
                Err(e) => outcome.left.push(LeftAlone {
                    sequence,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(outcome)
    }

    /// A stored dead letter as the API shows it, its payload cut to `preview` bytes when
    /// given.
    fn read(&self, message: &StreamMessage, preview: Option<usize>) -> DeadLetter {
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let subject = self.subjects.unqualify(message.subject.as_str());
        let consumer = subject.strip_prefix("deadletter.").unwrap_or(subject);
        let original = header(dead_letter::ORIGINAL_SUBJECT_HEADER);
        let payload_bytes = message.payload.len();
        let shown = preview.map_or(payload_bytes, |p| p.min(payload_bytes));
        let dead_lettered_at = DateTime::<Utc>::from_timestamp(
            message.time.unix_timestamp(),
            message.time.nanosecond(),
        )
        .unwrap_or_default();
        DeadLetter {
            sequence: message.sequence,
            consumer: consumer.to_owned(),
            reason: header(dead_letter::REASON_HEADER),
            original_subject: self.subjects.unqualify(&original).to_owned(),
            original_sequence: header(dead_letter::ORIGINAL_SEQUENCE_HEADER).parse().ok(),
            deliveries: header(dead_letter::DELIVERIES_HEADER).parse().ok(),
            dead_lettered_at,
            payload_bytes,
            payload: String::from_utf8_lossy(&message.payload[..shown]).into_owned(),
            payload_truncated: shown < payload_bytes,
            not_replayable: self.why_not_replayable(consumer, &original, payload_bytes),
        }
    }

    /// Why a dead letter of `consumer`, first published on `original` (as stored, with the
    /// prefix), cannot be replayed; `None` when it can.
    fn why_not_replayable(&self, consumer: &str, original: &str, bytes: usize) -> Option<String> {
        let Some(key) = ConsumerKey::ALL
            .into_iter()
            .find(|key| key.durable_name() == consumer)
        else {
            return Some(format!("`{consumer}` is no consumer this deployment has"));
        };
        if key == ConsumerKey::Timeline {
            return Some(
                "a timeline line is dead-lettered only when it is malformed or on a subject it does not belong to; sent again it would be refused again, so discard it".into(),
            );
        }
        if key == ConsumerKey::SearchIndexer {
            return Some(
                "a search dead letter is a data event every subscriber has had; run `tributary search reindex` to index every stored record again, then discard it".into(),
            );
        }
        if !key.accepts(&self.subjects, original) {
            return Some(format!(
                "its original subject `{original}` is not one `{consumer}` is for"
            ));
        }
        if bytes == 0 {
            return Some("its payload was not kept (it was dropped unread)".into());
        }
        None
    }
}

/// What a bulk call does to each dead letter.
#[derive(Debug, Clone, Copy)]
enum Bulk {
    Replay,
    Discard,
}

/// JetStream did not do what was asked.
fn unavailable(e: impl std::fmt::Display) -> DeadLetterError {
    DeadLetterError::Unavailable(e.to_string())
}
