//! NATS: connecting (with reconnects after the first connection), creating the JetStream
//! streams and durable consumers idempotently (only the provisioning step does,
//! [`crate::provision`]), and checking at a service's start-up that what it uses exists.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use async_nats::{Client, ConnectErrorKind, ConnectOptions};
use secrecy::ExposeSecret;
use tributary_proto::streams::{ConsumerKey, DeliveryLimits, StreamKey};
use tributary_proto::{ServiceName, Subjects};

use crate::config::NatsConfig;
use crate::provision::StreamSizes;
pub use crate::provision::{provision_all, PROVISION_USER};

/// What a service says when a stream or consumer it uses is missing.
const PROVISION_HINT: &str = "run `tributary nats provision` first (compose runs it as its `nats-provision` service, `tributary up` provisions before starting the services); no service may create streams or consumers";

/// A NATS or JetStream step failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The first connection could not be made.
    #[error("cannot reach NATS at {url}: {reason}. Start it with `nats-server -js` (or set `nats.url` / TRIBUTARY__NATS__URL)")]
    Unreachable {
        /// The configured URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered but refused this client's user or password.
    #[error("NATS at {url} refused {user}: {reason}. Check `nats.user` and `nats.password` (TRIBUTARY__NATS__USER / TRIBUTARY__NATS__PASSWORD) against the server's users (deploy/nats-server.conf)")]
    Refused {
        /// The configured URL.
        url: String,
        /// The user, or "a client without a user".
        user: String,
        /// What the server said.
        reason: String,
    },
    /// A stream could not be created or updated.
    #[error("cannot provision JetStream stream {stream}: {reason}. Is JetStream enabled (`nats-server -js`)?")]
    Stream {
        /// The stream's name.
        stream: String,
        /// Why.
        reason: String,
    },
    /// A stream or consumer a service uses is missing, or not as provisioning makes it.
    #[error("JetStream {what}: {reason}. {hint}", hint = PROVISION_HINT)]
    NotProvisioned {
        /// The stream or consumer, named.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A durable consumer could not be created or updated.
    #[error("cannot provision JetStream consumer {consumer} on {stream}: {reason}")]
    Consumer {
        /// The consumer's durable name.
        consumer: String,
        /// Its stream.
        stream: String,
        /// Why.
        reason: String,
    },
}

/// The inbox prefix of `user`: replies to its requests, JetStream acknowledgements and
/// pulled messages come to `_INBOX_<user>.…`, which deploy/nats-server.conf lets only that
/// user read. With the default `_INBOX` every user allowed to read inboxes could read every
/// reply, `plugins.runtime`'s secrets included.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// Connects to NATS, as `nats.user` when it is set (with its own inbox, [`inbox_prefix`]).
/// The first connection must succeed within `connect_timeout_secs`; after that the client
/// reconnects on its own, forever, and buffers publishes meanwhile.
pub async fn connect(config: &NatsConfig, client_name: &str) -> Result<Client, NatsError> {
    let unreachable = |reason: String| NatsError::Unreachable {
        url: tributary_proto::redact::redact_urls(&config.url).into_owned(),
        reason,
    };
    let mut options = ConnectOptions::new();
    if !config.user.is_empty() {
        options = options
            .user_and_password(
                config.user.clone(),
                config.password.expose_secret().to_owned(),
            )
            .custom_inbox_prefix(inbox_prefix(&config.user));
    }
    let options = options
        .name(client_name)
        .connection_timeout(Duration::from_secs(config.connect_timeout_secs))
        .max_reconnects(None)
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => {
                    tracing::warn!("Disconnected from NATS; reconnecting.")
                }
                async_nats::Event::Connected => tracing::info!("Connected to NATS."),
                // A permission violation arrives here, not as the error of the publish or
                // subscribe that caused it: without this line it would go unnoticed.
                async_nats::Event::ServerError(e) => {
                    tracing::warn!(error = %e, "NATS refused an operation.")
                }
                other => tracing::debug!(event = %other, "NATS connection event."),
            }
        });
    let connecting = options.connect(server_urls(&config.url));
    match tokio::time::timeout(Duration::from_secs(config.connect_timeout_secs), connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e))
            if matches!(
                e.kind(),
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication
            ) =>
        {
            Err(NatsError::Refused {
                url: tributary_proto::redact::redact_urls(&config.url).into_owned(),
                user: if config.user.is_empty() {
                    "a client without a user".to_owned()
                } else {
                    format!("user `{}`", config.user)
                },
                reason: e.to_string(),
            })
        }
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable(format!(
            "no answer within {} s",
            config.connect_timeout_secs
        ))),
    }
}

/// The servers `nats.url` names: one URL, or several separated by commas (the servers of a
/// cluster), each trimmed, empty ones left out.
pub fn server_urls(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .collect()
}

/// Creates every stream, sized by `sizes`, on one server, or updates it to the definition in
/// proto when it exists ([`provision_replicated_streams`] with one replica).
pub async fn provision_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    sizes: &StreamSizes,
) -> Result<(), NatsError> {
    provision_replicated_streams(js, subjects, sizes, 1).await
}

/// Creates every stream, sized by `sizes` and kept on `replicas` servers of the cluster
/// (`nats.replicas`), or updates it to the definition in proto when it exists; the durable
/// consumers created on it afterwards take its replicas. Running it twice changes nothing.
/// Only the provisioning step may ([`crate::provision::provision_all`]).
pub async fn provision_replicated_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    sizes: &StreamSizes,
    replicas: usize,
) -> Result<(), NatsError> {
    for key in StreamKey::ALL {
        let mut config = key.config(subjects);
        config.max_bytes = sizes.max_bytes(key);
        config.num_replicas = replicas;
        let name = config.name.clone();
        let mut attempt = 1;
        loop {
            match js.create_or_update_stream(config.clone()).await {
                // A server that is not a cluster takes any replicas and keeps one copy: the
                // operator would believe the stream survives a server it does not survive.
                Ok(made) if copies(&made) < replicas => {
                    return Err(NatsError::Stream {
                        stream: name,
                        reason: format!(
                            "the server keeps {} copy of it where {replicas} were asked for (nats.replicas = {replicas} needs a JetStream cluster of at least {replicas} servers)",
                            copies(&made)
                        ),
                    });
                }
                Ok(_) => break,
                // nats-server removes the account's stream directory when its last stream is
                // deleted; a create racing that removal fails once with "error creating store
                // for stream" (10049) and succeeds when asked again.
                Err(e) if attempt < STORE_ATTEMPTS && e.to_string().contains("10049") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) if replicas > 1 => {
                    return Err(NatsError::Stream {
                        stream: name,
                        reason: format!(
                            "{e} (nats.replicas = {replicas} needs a JetStream cluster of at least {replicas} servers)"
                        ),
                    })
                }
                Err(e) => {
                    return Err(NatsError::Stream {
                        stream: name,
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(())
}

/// How many servers keep a stream: its leader and the followers its cluster information
/// lists (none on a server that is not a cluster).
fn copies(info: &jetstream::stream::Info) -> usize {
    1 + info.cluster.as_ref().map_or(0, |c| c.replicas.len())
}

/// How many times a stream whose store could not be created is asked for.
const STORE_ATTEMPTS: u32 = 3;

/// Creates a service's durable pull consumer, filtered to its stream's subject, or updates
/// it to `limits` when it exists, and returns it. Only the provisioning step may.
pub async fn provision_consumer(
    js: &jetstream::Context,
    subjects: &Subjects,
    key: ConsumerKey,
    limits: DeliveryLimits,
) -> Result<jetstream::consumer::Consumer<pull::Config>, NatsError> {
    let stream = key.stream().name(subjects);
    create_or_update_consumer(
        js,
        &stream,
        key.durable_name(),
        key.config(subjects, limits),
    )
    .await
}

/// Updates the durable pull consumer `name` on `stream` to `config`, or creates it.
pub(crate) async fn create_or_update_consumer(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    config: pull::Config,
) -> Result<jetstream::consumer::Consumer<pull::Config>, NatsError> {
    let fail = |reason: String| NatsError::Consumer {
        consumer: name.to_owned(),
        stream: stream.to_owned(),
        reason,
    };
    match js.update_consumer_on_stream(config.clone(), stream).await {
        Ok(consumer) => Ok(consumer),
        Err(_) => js
            .create_consumer_on_stream(config, stream)
            .await
            .map_err(|e| fail(e.to_string())),
    }
}

/// Checks that every stream `service` uses exists ([`tributary_proto::streams::streams_of`]),
/// or fails naming the first missing one and `tributary nats provision`.
pub async fn check_streams(
    js: &jetstream::Context,
    subjects: &Subjects,
    service: ServiceName,
) -> Result<(), NatsError> {
    for key in tributary_proto::streams::streams_of(service) {
        let name = key.name(subjects);
        if let Err(e) = js.get_stream(&name).await {
            return Err(NatsError::NotProvisioned {
                what: format!("stream {name}"),
                reason: format!("cannot be found ({e})"),
            });
        }
    }
    Ok(())
}

/// The service's durable pull consumer `key`, as provisioning made it. Fails, naming
/// `tributary nats provision`, when it is missing or takes other subjects than its stream's
/// own; warns when its delivery limits are not those `limits` (the service's settings) ask
/// for, as the settings then take effect at the next provisioning.
pub async fn open_consumer(
    js: &jetstream::Context,
    subjects: &Subjects,
    key: ConsumerKey,
    limits: DeliveryLimits,
) -> Result<jetstream::consumer::Consumer<pull::Config>, NatsError> {
    let stream = key.stream().name(subjects);
    let what = format!("consumer {} on {stream}", key.durable_name());
    let mut consumer: jetstream::consumer::Consumer<pull::Config> = js
        .get_consumer_from_stream(key.durable_name(), &stream)
        .await
        .map_err(|e| NatsError::NotProvisioned {
            what: what.clone(),
            reason: format!("cannot be found ({e})"),
        })?;
    let info = consumer
        .info()
        .await
        .map_err(|e| NatsError::NotProvisioned {
            what: what.clone(),
            reason: format!("cannot be read ({e})"),
        })?;
    let config = &info.config;
    let wanted = key.filter_subject(subjects);
    if config.filter_subject != wanted || config.deliver_subject.is_some() {
        return Err(NatsError::NotProvisioned {
            what,
            reason: format!(
                "takes `{}` instead of only `{wanted}` as a pull consumer",
                config.filter_subject
            ),
        });
    }
    if config.ack_wait != limits.ack_wait
        || config.max_deliver != limits.max_deliver
        || config.max_ack_pending != limits.max_ack_pending
    {
        tracing::warn!(
            consumer = key.durable_name(),
            "The consumer's delivery limits are not those of this service's settings; `tributary nats provision` brings them up to date."
        );
    }
    Ok(consumer)
}
