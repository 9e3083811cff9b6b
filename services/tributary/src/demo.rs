//! `tributary up --demo`: installs the demo connector (`tributary.demo`) as the instance
//! `demo`, waits until its sample set is searchable, and says how to search it.

use crate::outln;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tributary_kit::client::{CallError, MeshClient};
use tributary_kit::Config;

use crate::local::nats_users::ADMIN_USER;
use tributary_proto::requests::plugins::InstallRequest;
use tributary_proto::requests::search::StartReindex;
use tributary_search::query::{SearchQuery, SearchResults};
use tributary_search::reindex::ReindexStarted;

/// The demo connector instance's id.
pub const DEMO_INSTANCE: &str = "demo";

/// How long the sample set gets to become searchable.
const SEARCHABLE_WITHIN: Duration = Duration::from_secs(120);

/// Installs and enables the demo instance unless it is there already (enabling it syncs it at
/// once), then waits until the search service holds every sample entry and prints how to
/// search them.
pub async fn install_and_announce(config: &Config, search_addr: SocketAddr) -> anyhow::Result<()> {
    let client = MeshClient::connect(config, "tributary-up-demo".to_owned()).await?;
    let installed_before = match client.instance(DEMO_INSTANCE).await {
        Ok(instance) if instance.state == "enabled" => true,
        Ok(instance) if instance.state == "uninstalled" => {
            outln!(
                "The `{DEMO_INSTANCE}` instance was uninstalled with its data kept: installing \
                 it again (`tributary plugins uninstall {DEMO_INSTANCE} --purge` deletes it)."
            );
            install_demo(&client).await?;
            client.enable(DEMO_INSTANCE).await?;
            true
        }
        Ok(_) => {
            client.enable(DEMO_INSTANCE).await?;
            true
        }
        Err(e) if e.is_not_found() => {
            install_demo(&client).await?;
            client.enable(DEMO_INSTANCE).await?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    let expected: usize = tributary_connector_demo::sample_counts()
        .iter()
        .map(|(_, count)| count)
        .sum();
    // Installed by an earlier run, its items are in PostgreSQL and a sync sends nothing new:
    // an index made since (a new data directory, a deleted index) is rebuilt from there.
    if installed_before && searchable_now(&client).await? < expected {
        let started: ReindexStarted = client.call(&StartReindex {}).await?;
        outln!(
            "The demo data is in PostgreSQL but not in the {} index: rebuilding the index from \
             PostgreSQL (`tributary search reindex`).",
            started.backend
        );
    }
    let searchable = wait_until_searchable(&client, expected).await?;
    outln!("{}", announcement(config, search_addr, searchable));
    Ok(())
}

/// Installs the demo connector as [`DEMO_INSTANCE`] with every permission it asks for; one
/// uninstalled with its data kept comes back with it.
async fn install_demo(client: &MeshClient) -> Result<(), CallError> {
    let plugin = client.plugin(tributary_connector_demo::PLUGIN_ID).await?;
    client
        .install(InstallRequest {
            plugin_id: plugin.id,
            instance_id: Some(DEMO_INSTANCE.to_owned()),
            config: Some(serde_json::json!({})),
            accept_permissions: plugin.permissions,
        })
        .await?;
    Ok(())
}

/// How many of the demo instance's entries `search.query` finds now.
async fn searchable_now(client: &MeshClient) -> Result<usize, CallError> {
    let query = SearchQuery {
        source: Some(DEMO_INSTANCE.to_owned()),
        limit: 1,
        ..SearchQuery::default()
    };
    let results: SearchResults = client.call(&query).await?;
    Ok(results.total)
}

/// Polls [`searchable_now`] until `expected` entries are there.
async fn wait_until_searchable(client: &MeshClient, expected: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + SEARCHABLE_WITHIN;
    loop {
        match searchable_now(client).await {
            Ok(total) if total >= expected => return Ok(total),
            Ok(total) if Instant::now() > deadline => anyhow::bail!(
                "the demo data is not searchable yet: {total} of {expected} entries after {}s; \
                 `tributary sync status` shows how the demo instance's sync went",
                SEARCHABLE_WITHIN.as_secs()
            ),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// What `--demo` prints once the sample set is searchable.
fn announcement(config: &Config, search_addr: SocketAddr, searchable: usize) -> String {
    let token = if config.search.api_token_file.as_os_str().is_empty() {
        "<search.api_token>".to_owned()
    } else {
        format!("$(cat {})", config.search.api_token_file.display())
    };
    // The other commands find the NATS server `tributary up` started (and the password of
    // `admin`) under the data directory; one configured must be named to them.
    let cli = if config.nats.user == ADMIN_USER {
        let default_dir = Config::defaults().map(|defaults| defaults.data_dir).ok();
        if default_dir.as_deref() == Some(config.data_dir.as_path()) {
            "cargo run -p tributary --".to_owned()
        } else {
            format!(
                "TRIBUTARY__DATA_DIR={} cargo run -p tributary --",
                config.data_dir.display()
            )
        }
    } else if config.nats.url == "nats://127.0.0.1:4222" {
        "cargo run -p tributary --".to_owned()
    } else {
        format!(
            "TRIBUTARY__NATS__URL={} cargo run -p tributary --",
            config.nats.url
        )
    };
    format!(
        "\nDemo data is ready: {searchable} entries from the `{DEMO_INSTANCE}` connector instance \
         (people, organisations, conversations and messages, calendar events, documents of a \
         design studio building a coffee roaster's loyalty app).\n\
         In another terminal, try:\n\
         \x20 {cli} search loyalty\n\
         \x20 {cli} search budget --type message\n\
         \x20 {cli} search launch --type calendar_event\n\
         \x20 {cli} search priya --type person\n\
         \x20 {cli} search \"payment review\" --json\n\
         or over HTTP: curl -H \"Authorization: Bearer {token}\" \
         'http://{search_addr}/search?q=loyalty'\n"
    )
}
