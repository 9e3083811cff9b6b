//! The services' NATS request APIs as a client calls them (the command line, the connector
//! and channel services): one typed method per `plugins.*` endpoint, [`MeshClient::request`]
//! for any other service's, each request carrying who asks, each reply read from its
//! [`NatsReply`] envelope.

use std::time::Duration;

use crate::api::{
    ApiError, AuditEntry, AuditQuery, Call, ConfigureRequest, ErrorCode, InstallRequest,
    InstanceCall, InstanceFilter, InstanceView, NatsReply, PluginList, PluginView,
    UninstallOutcome, UninstallRequest, UpgradeRequest,
};
use crate::api::{HeartbeatRequest, RuntimeInstance};
use crate::nats_api::{InstanceRef, NoBody, PluginRef};
use async_nats::client::RequestErrorKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tributary_kit::nats::NatsError;
use tributary_kit::Config;
use tributary_proto::{ServiceName, Subjects};

/// How long a request waits for its answer before giving up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nobody listens on the subject, or the listener did not answer in time.
    #[error("the {service} does not answer on {subject}; is it running (tributary up)?")]
    NotAnswering {
        /// The service asked (`plugin manager`, `connector service`).
        service: &'static str,
        /// The request subject.
        subject: String,
    },
    /// The service refused the request or failed; it says why.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request could not be sent.
    #[error("cannot send the request on {subject}: {reason}")]
    Send {
        /// The request subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The answer is not a reply envelope of the expected shape.
    #[error("cannot read the answer on {subject}: {reason}")]
    BadReply {
        /// The request subject.
        subject: String,
        /// Why.
        reason: String,
    },
}

impl CallError {
    /// Whether the service said there is no such plugin or instance.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Api(e) if e.error == ErrorCode::NotFound)
    }
}

/// Who the command line says it is in the audit log: `cli:<$USER>`, or `cli:unknown`.
pub fn actor_from_env() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{user}")
}

/// A connection to the services' NATS request APIs.
#[derive(Debug, Clone)]
pub struct MeshClient {
    /// The NATS connection.
    nats: async_nats::Client,
    /// The deployment's subjects (with its prefix).
    subjects: Subjects,
    /// Who asks, recorded in the audit log.
    actor: String,
    /// How long one request waits for its answer.
    timeout: Duration,
}

impl MeshClient {
    /// Connects to the NATS server of `config`, asking as `actor`.
    pub async fn connect(config: &Config, actor: String) -> Result<Self, NatsError> {
        let nats = tributary_kit::nats::connect(&config.nats, "tributary-client").await?;
        Ok(Self::new(nats, config.subjects(), actor))
    }

    /// A client over an existing connection.
    pub fn new(nats: async_nats::Client, subjects: Subjects, actor: String) -> Self {
        Self {
            nats,
            subjects,
            actor,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same client, waiting `timeout` for each answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `request` to `plugins.<verb>` and reads the answer.
    pub async fn call<Req, Resp>(&self, verb: &str, request: &Req) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        self.request(ServiceName::PluginManager, verb, request)
            .await
    }

    /// Sends `request` to `<service>.<verb>` (`connector.sync`) and reads the answer.
    pub async fn request<Req, Resp>(
        &self,
        service: ServiceName,
        verb: &str,
        request: &Req,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let subject = self.subjects.request(service, verb);
        let body = serde_json::to_vec(request).map_err(|e| CallError::Send {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
        let asked = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(self.timeout));
        let message = self
            .nats
            .send_request(subject.clone(), asked)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders | RequestErrorKind::TimedOut => {
                    CallError::NotAnswering {
                        service: service_label(service),
                        subject: subject.clone(),
                    }
                }
                _ => CallError::Send {
                    subject: subject.clone(),
                    reason: e.to_string(),
                },
            })?;
        match serde_json::from_slice::<NatsReply<Resp>>(&message.payload) {
            Ok(NatsReply::Ok(value)) => Ok(value),
            Ok(NatsReply::Error(e)) => Err(CallError::Api(e)),
            Err(e) => Err(CallError::BadReply {
                subject,
                reason: e.to_string(),
            }),
        }
    }

    /// The NATS connection it asks through.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The deployment's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    fn instance_call<B>(&self, instance_id: &str, body: B) -> InstanceCall<B> {
        InstanceCall {
            instance_id: instance_id.to_owned(),
            actor: Some(self.actor.clone()),
            body,
        }
    }

    /// `plugins.list`: every plugin discovered, valid and invalid.
    pub async fn plugins(&self) -> Result<PluginList, CallError> {
        self.call("list", &NoBody {}).await
    }

    /// `plugins.rescan`: scans the plugin directories again and answers with the list.
    pub async fn rescan(&self) -> Result<PluginList, CallError> {
        self.call("rescan", &NoBody {}).await
    }

    /// `plugins.info`: one valid plugin.
    pub async fn plugin(&self, plugin_id: &str) -> Result<PluginView, CallError> {
        let request = PluginRef {
            plugin_id: plugin_id.to_owned(),
        };
        self.call("info", &request).await
    }

    /// `plugins.instances`: every installed instance.
    pub async fn instances(&self) -> Result<Vec<InstanceView>, CallError> {
        self.instances_where(&InstanceFilter::default()).await
    }

    /// `plugins.instances`: the installed instances `filter` selects.
    pub async fn instances_where(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<InstanceView>, CallError> {
        self.call("instances", filter).await
    }

    /// The ids of the instances of `plugin_type` whose service should run them now
    /// ([`crate::api::runs_in_state`]).
    pub async fn running_instance_ids(&self, plugin_type: &str) -> Result<Vec<String>, CallError> {
        let filter = InstanceFilter {
            plugin_type: Some(plugin_type.to_owned()),
            state: None,
        };
        Ok(self
            .instances_where(&filter)
            .await?
            .into_iter()
            .filter(|i| crate::api::runs_in_state(&i.state))
            .map(|i| i.id)
            .collect())
    }

    /// `plugins.runtime`: what a service needs to run an instance, secrets included.
    pub async fn runtime(&self, instance_id: &str) -> Result<RuntimeInstance, CallError> {
        let request = InstanceRef {
            instance_id: instance_id.to_owned(),
        };
        self.call("runtime", &request).await
    }

    /// `plugins.heartbeat`: the instance is alive, or failed with `error`.
    pub async fn heartbeat(
        &self,
        instance_id: &str,
        error: Option<String>,
    ) -> Result<InstanceView, CallError> {
        let request = Call {
            actor: Some(self.actor.clone()),
            body: HeartbeatRequest {
                instance_id: instance_id.to_owned(),
                error,
            },
        };
        self.call("heartbeat", &request).await
    }

    /// `plugins.instance`: one instance.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        let request = InstanceRef {
            instance_id: instance_id.to_owned(),
        };
        self.call("instance", &request).await
    }

    /// `plugins.install`.
    pub async fn install(&self, request: InstallRequest) -> Result<InstanceView, CallError> {
        let request = Call {
            actor: Some(self.actor.clone()),
            body: request,
        };
        self.call("install", &request).await
    }

    /// `plugins.configure`: replaces the configuration (secrets left out keep their value).
    pub async fn configure(
        &self,
        instance_id: &str,
        config: serde_json::Value,
    ) -> Result<InstanceView, CallError> {
        let request = self.instance_call(instance_id, ConfigureRequest { config });
        self.call("configure", &request).await
    }

    /// `plugins.enable`.
    pub async fn enable(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        let request = self.instance_call(instance_id, NoBody {});
        self.call("enable", &request).await
    }

    /// `plugins.disable`.
    pub async fn disable(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        let request = self.instance_call(instance_id, NoBody {});
        self.call("disable", &request).await
    }

    /// `plugins.upgrade`, accepting `accept_permissions` for the new version.
    pub async fn upgrade(
        &self,
        instance_id: &str,
        accept_permissions: Vec<String>,
    ) -> Result<InstanceView, CallError> {
        let request = self.instance_call(instance_id, UpgradeRequest { accept_permissions });
        self.call("upgrade", &request).await
    }

    /// `plugins.uninstall`.
    pub async fn uninstall(
        &self,
        instance_id: &str,
        purge: bool,
    ) -> Result<UninstallOutcome, CallError> {
        let request = self.instance_call(instance_id, UninstallRequest { purge });
        self.call("uninstall", &request).await
    }

    /// `plugins.audit`: the newest `limit` entries, of one instance or all, oldest first.
    pub async fn audit(
        &self,
        instance_id: Option<String>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, CallError> {
        let request = AuditQuery {
            instance_id,
            limit: Some(limit),
        };
        self.call("audit", &request).await
    }
}

/// How an error names a service.
fn service_label(service: ServiceName) -> &'static str {
    match service {
        ServiceName::PluginManager => "plugin manager",
        ServiceName::Connector => "connector service",
        ServiceName::Etl => "ETL service",
        ServiceName::Channel => "channel service",
        ServiceName::Search => "search service",
    }
}
