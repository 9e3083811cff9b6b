//! Starting the real ETL and search service against this test's NATS prefix, database and
//! data directory; publishing data events; asking the search API. Connector items and
//! everything else of the mesh go through kit's one handle ([`Mesh`]), which [`Harness`]
//! derefs to.

use std::ops::Deref;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tributary_kit::testing::{Mesh, RunningService, TestEnv};
use tributary_proto::envelope::{Envelope, EventSource};
use tributary_proto::events::EventKind;
use tributary_search::query::{SearchQuery, SearchResults};

/// A test environment with batches and retries turned down for speed.
pub async fn env() -> TestEnv {
    let mut env = TestEnv::new().await;
    env.config.etl.batch_wait_ms = 20;
    env.config.etl.ack_wait_secs = 2;
    env.config.search.batch_wait_ms = 20;
    env.config.search.ack_wait_secs = 2;
    env.config.search.max_deliver = 2;
    env
}

/// The ETL and the search service running, and the test's handle on the mesh, which the
/// harness derefs to.
pub struct Harness {
    pub env: TestEnv,
    /// The test's handle on the mesh.
    pub mesh: Mesh,
    /// Held so the ETL runs as long as the harness.
    _etl: RunningService,
    search: Option<RunningService>,
}

impl Deref for Harness {
    type Target = Mesh;

    fn deref(&self) -> &Mesh {
        &self.mesh
    }
}

impl Harness {
    /// Starts both services.
    pub async fn start() -> Self {
        Self::start_in(env().await).await
    }

    /// Starts both services in `env`.
    pub async fn start_in(env: TestEnv) -> Self {
        let etl = RunningService::start(tributary_etl::build, env.config.clone()).await;
        let search = Some(start_search(&env).await);
        Self {
            mesh: Mesh::of(&env).await,
            _etl: etl,
            search,
            env,
        }
    }

    /// Stops the search service and starts it again on the same data directory.
    pub async fn restart_search(&mut self) {
        self.stop_search().await;
        self.search = Some(start_search(&self.env).await);
    }

    /// Stops the search service (releasing its index).
    pub async fn stop_search(&mut self) {
        if let Some(search) = self.search.take() {
            search.stop().await;
        }
    }

    /// Where the search service listens.
    pub fn search_addr(&self) -> std::net::SocketAddr {
        self.search
            .as_ref()
            .expect("the search service runs")
            .http_addr
    }

    /// `GET /search` with the right token and these parameters.
    pub async fn http(&self, params: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("http://{}/search", self.search_addr()))
            .query(params)
            .bearer_auth(self.env.config.search.api_token.expose_secret())
            .send()
            .await
            .expect("the search service answers")
    }

    /// The results of `GET /search`, which must succeed.
    pub async fn search(&self, params: &[(&str, &str)]) -> SearchResults {
        let response = self.http(params).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.expect("search results")
    }

    /// The titles found for `q`.
    pub async fn titles(&self, q: &str) -> Vec<String> {
        self.search(&[("q", q)])
            .await
            .hits
            .into_iter()
            .map(|h| h.title)
            .collect()
    }

    /// Waits until `q` finds exactly `want` hits.
    pub async fn wait_hits(&self, params: &[(&str, &str)], want: usize) -> SearchResults {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let results = self.search(params).await;
            if results.total == want {
                return results;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{params:?} found {} hits, not {want}: {results:#?}",
                    results.total
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `search.query` over NATS.
    pub async fn nats_query(&self, query: &SearchQuery) -> SearchResults {
        self.client()
            .call(query)
            .await
            .expect("search.query answers")
    }

    /// Publishes a data event as the ETL would, and waits until JetStream has it.
    pub async fn publish_event(
        &self,
        kind: EventKind,
        instance: &str,
        data: Value,
    ) -> Envelope<Value> {
        let envelope = Envelope::new(
            kind,
            EventSource::new("etl", Some(instance.into())),
            None,
            data,
        );
        self.publish_envelope(&envelope).await;
        envelope
    }

    /// Publishes an envelope (again, maybe) on its subject.
    pub async fn publish_envelope(&self, envelope: &Envelope<Value>) {
        self.publish_raw(
            &self.subjects().qualify(&envelope.event_type),
            serde_json::to_vec(envelope).unwrap(),
        )
        .await;
    }
}

async fn start_search(env: &TestEnv) -> RunningService {
    RunningService::start(tributary_search::build, env.config.clone()).await
}

/// A connector item as JSON.
pub fn item(instance: &str, entity: &str, external_id: &str, version: &str, data: Value) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": entity,
        "external_id": external_id,
        "source_modified_at": version,
        "data": data,
        "raw": {"id": external_id},
    })
}

/// A tombstone item.
pub fn tombstone(instance: &str, entity: &str, external_id: &str, version: &str) -> Value {
    json!({
        "instance_id": instance,
        "entity_type": entity,
        "external_id": external_id,
        "operation": "delete",
        "source_modified_at": version,
    })
}
