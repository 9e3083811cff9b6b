//! What the plugin manager asks the other services over NATS for its admin API and its console:
//! sync control (`connector.sync`, `connector.cancel`, `connector.state`, `connector.states`),
//! search (`search.query`, for the console's search page), a channel instance's webhook URL
//! (`channel.webhook`, for its console page), people (`etl.people.*`: a person's
//! view, suggestions, shared identifiers, and the changes that mend a merge, asked as
//! `plugin-manager` on behalf of the admin token's name) and each service's readiness
//! (`<service>.status`, the checks its `/readyz` runs). One [`Mesh`] serves both edges, so the
//! console offers exactly what the admin API does.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use tributary_kit::client::{CallError, MeshClient};
use tributary_proto::envelope::Envelope;
use tributary_proto::events::{EventKind, SyncEvent, SyncLifecycle, SyncMode};
use tributary_proto::requests::channel::{WebhookRequest, WebhookView};
use tributary_proto::requests::connector::{
    CancelAccepted, CancelSync, StateQuery, StatesQuery, SyncAccepted, SyncCommand, SyncStateView,
};
use tributary_proto::requests::etl::{
    Caller, DecideSuggestion, DecisionOutcome, ListShared, ListSuggestions, MergePeople, Page,
    PersonShown, SharedPage, ShowPerson, SuggestionPage, UnmergePerson,
};
use tributary_proto::requests::search::{SearchQuery, SearchResults};
use tributary_proto::requests::{ApiError, ErrorCode};
use tributary_proto::{ServiceName, Subjects};
use uuid::Uuid;

/// How long a readiness question waits: a service that does not answer within it is shown
/// as not answering, and the page still renders.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// The services the overview asks, in the order it shows them.
pub const SERVICES: [ServiceName; 5] = [
    ServiceName::PluginManager,
    ServiceName::Connector,
    ServiceName::Etl,
    ServiceName::Channel,
    ServiceName::Search,
];

/// Why a question to another service got no answer to use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeshError {
    /// The service answered with a refusal (or its own failure), as it said it.
    #[error("{0}")]
    Refused(ApiError),
    /// The service did not answer (it is not running, or too slow): the admin API answers
    /// 503, naming the service and the subject asked.
    #[error("{0}")]
    NotAnswering(ApiError),
}

impl MeshError {
    /// The contract's error: the refusal, or an `internal` error saying who did not answer.
    pub fn into_api_error(self) -> ApiError {
        match self {
            MeshError::Refused(e) | MeshError::NotAnswering(e) => e,
        }
    }
}

/// The plugin manager's client of the other services.
#[derive(Debug, Clone)]
pub struct Mesh {
    client: MeshClient,
}

/// One dependency a service checks for its readiness, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DependencyCheck {
    /// The dependency (`nats`, `postgresql`, `index`).
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// What `/readyz` says when it did not (never the cause, which is in the service's log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One service's readiness: the checks of its `/readyz`, asked on `<service>.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceReadiness {
    /// The service (`plugin-manager`, `connector`, …).
    pub service: String,
    /// Whether it answered and every check passed.
    pub ready: bool,
    /// Whether it answered at all; a service that is not running does not.
    pub answering: bool,
    /// Each dependency and its state (empty when it did not answer).
    pub checks: Vec<DependencyCheck>,
}

/// What `<service>.status` answers (kit's `Readiness`).
#[derive(Deserialize)]
struct StatusReply {
    ready: bool,
    checks: Vec<DependencyCheck>,
}

/// How to run a sync asked for over the admin API or the console.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRequest {
    /// `incremental` (the default), `full` or `backfill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<SyncMode>,
    /// For a backfill: how far back to go (RFC 3339). Required for a backfill, refused
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

impl Mesh {
    /// A client on the plugin manager's own NATS connection.
    pub fn new(nats: async_nats::Client, subjects: Subjects) -> Self {
        Self {
            client: MeshClient::new(nats, subjects, "plugin-manager".to_owned()),
        }
    }

    /// `connector.sync`: starts a sync of `instance_id` now.
    pub async fn sync(
        &self,
        instance_id: &str,
        request: SyncRequest,
    ) -> Result<SyncAccepted, MeshError> {
        let command = SyncCommand {
            instance_id: instance_id.to_owned(),
            mode: request.mode.unwrap_or(SyncMode::Incremental),
            since: request.since,
        };
        self.client.call(&command).await.map_err(unanswered)
    }

    /// `connector.cancel`: stops the running sync of `instance_id`.
    pub async fn cancel(&self, instance_id: &str) -> Result<CancelAccepted, MeshError> {
        let cancel = CancelSync {
            instance_id: instance_id.to_owned(),
        };
        self.client.call(&cancel).await.map_err(unanswered)
    }

    /// `connector.state`: where the syncs of `instance_id` stand.
    pub async fn sync_state(&self, instance_id: &str) -> Result<SyncStateView, MeshError> {
        let query = StateQuery {
            instance_id: instance_id.to_owned(),
        };
        self.client.call(&query).await.map_err(unanswered)
    }

    /// `connector.states`: the sync state of every instance the connector service knows.
    pub async fn sync_states(&self) -> Result<Vec<SyncStateView>, MeshError> {
        self.client
            .call(&StatesQuery {})
            .await
            .map(|s| s.instances)
            .map_err(unanswered)
    }

    /// The connector service's sync lifecycle events (`connector.SyncStarted`, `…Progress`,
    /// `…Completed`, `…Failed`) as they are published, for the console's live progress: a
    /// core NATS subscription to each, so nothing is stored or acknowledged. An event that
    /// does not parse is skipped.
    pub async fn sync_events(
        &self,
    ) -> Result<BoxStream<'static, (SyncEvent, SyncLifecycle)>, async_nats::SubscribeError> {
        let nats = self.client.nats();
        let mut subscriptions = Vec::new();
        for event in [
            SyncEvent::Started,
            SyncEvent::Progress,
            SyncEvent::Completed,
            SyncEvent::Failed,
        ] {
            let subject = self.client.subjects().event(EventKind::Sync(event));
            let events = nats.subscribe(subject).await?.filter_map(move |message| {
                let parsed = Envelope::<SyncLifecycle>::from_slice(&message.payload)
                    .ok()
                    .map(|envelope| (event, envelope.data));
                std::future::ready(parsed)
            });
            subscriptions.push(events.boxed());
        }
        Ok(futures::stream::select_all(subscriptions).boxed())
    }

    /// `channel.webhook`: the webhook URL a channel instance is (or, once enabled, will be)
    /// served at, for the console's instance page.
    pub async fn webhook(&self, instance_id: &str) -> Result<WebhookView, MeshError> {
        let request = WebhookRequest {
            instance_id: instance_id.to_owned(),
        };
        self.client.call(&request).await.map_err(unanswered)
    }

    /// `search.query`: what the index finds for `query`.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResults, MeshError> {
        self.client.call(query).await.map_err(unanswered)
    }

    /// `etl.people.show`: a person, her sources and the merges that built her, or the person
    /// her id was merged into.
    pub async fn person(&self, id: Uuid) -> Result<PersonShown, MeshError> {
        self.client
            .call(&ShowPerson { id })
            .await
            .map_err(unanswered)
    }

    /// `etl.people.suggestions`: a page of the pairs left for a person to decide.
    pub async fn people_suggestions(&self, page: Page) -> Result<SuggestionPage, MeshError> {
        self.client
            .call(&ListSuggestions { page })
            .await
            .map_err(unanswered)
    }

    /// `etl.people.shared`: a page of the identifiers that no longer merge anyone.
    pub async fn shared_identifiers(&self, page: Page) -> Result<SharedPage, MeshError> {
        self.client
            .call(&ListShared { page })
            .await
            .map_err(unanswered)
    }

    /// `etl.people.unmerge.plugin-manager`: splits person `id` back into the people her
    /// sources describe (only `source`'s records, when given), recorded as `actor`'s decision.
    pub async fn unmerge_person(
        &self,
        id: Uuid,
        source: Option<String>,
        actor: &str,
    ) -> Result<DecisionOutcome, MeshError> {
        let change = UnmergePerson {
            caller: Some(Caller::PluginManager),
            on_behalf_of: Some(actor.to_owned()),
            id,
            source,
        };
        self.client.call(&change).await.map_err(unanswered)
    }

    /// `etl.people.merge.plugin-manager`: persons `a` and `b` are one, as `actor` says.
    pub async fn merge_people(
        &self,
        a: Uuid,
        b: Uuid,
        actor: &str,
    ) -> Result<DecisionOutcome, MeshError> {
        let change = MergePeople {
            caller: Some(Caller::PluginManager),
            on_behalf_of: Some(actor.to_owned()),
            a,
            b,
        };
        self.client.call(&change).await.map_err(unanswered)
    }

    /// `etl.people.decide.plugin-manager`: accepts (merges) or rejects (keeps apart for good)
    /// the suggestion that `a` and `b` are one, as `actor` decides.
    pub async fn decide_suggestion(
        &self,
        a: Uuid,
        b: Uuid,
        accept: bool,
        actor: &str,
    ) -> Result<DecisionOutcome, MeshError> {
        let change = DecideSuggestion {
            caller: Some(Caller::PluginManager),
            on_behalf_of: Some(actor.to_owned()),
            a,
            b,
            accept,
        };
        self.client.call(&change).await.map_err(unanswered)
    }

    /// Every service's readiness, asked at once; one that does not answer within a few
    /// seconds is shown as not answering.
    pub async fn readiness(&self) -> Vec<ServiceReadiness> {
        futures::future::join_all(SERVICES.iter().map(|s| self.service_readiness(*s))).await
    }

    async fn service_readiness(&self, service: ServiceName) -> ServiceReadiness {
        let subject = self.client.subjects().request(service, "status");
        let asked = async_nats::Request::new()
            .payload(bytes::Bytes::new())
            .timeout(Some(STATUS_TIMEOUT));
        let reply = self
            .client
            .nats()
            .send_request(subject.clone(), asked)
            .await
            .map_err(|e| e.to_string())
            .and_then(|m| {
                serde_json::from_slice::<StatusReply>(&m.payload).map_err(|e| e.to_string())
            });
        match reply {
            Ok(reply) => ServiceReadiness {
                service: service.as_str().to_owned(),
                ready: reply.ready,
                answering: true,
                checks: reply.checks,
            },
            Err(cause) => {
                tracing::debug!(%subject, error = %cause, "A service did not answer its status.");
                ServiceReadiness {
                    service: service.as_str().to_owned(),
                    ready: false,
                    answering: false,
                    checks: Vec::new(),
                }
            }
        }
    }
}

/// A call's failure: the service's own refusal as it is, a service that does not answer (or
/// cannot be asked) as an internal error saying which and on what subject.
fn unanswered(e: CallError) -> MeshError {
    match e {
        CallError::Api(e) => MeshError::Refused(e),
        other => MeshError::NotAnswering(ApiError::new(ErrorCode::Internal, other.to_string())),
    }
}
