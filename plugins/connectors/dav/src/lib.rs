//! Built-in connector: CardDAV address books and CalDAV calendars.
//!
//! [`DavConnector`] finds a user's address books and event calendars from one URL (a server
//! root, principal, home set or collection), and syncs each contact into a person and each
//! calendar object into a calendar event. Syncs are incremental through WebDAV
//! `sync-collection` (RFC 6578); contents are fetched in batches with
//! `addressbook-multiget` / `calendar-multiget`; a member removed on the server becomes a
//! tombstone. See `docs/connectors/dav.md` for the configuration and field mapping.
//!
//! ```no_run
//! # async fn demo(ctx: tributary_plugin_sdk::PluginContext) {
//! use futures::StreamExt;
//! use tributary_connector_dav::DavConnector;
//! use tributary_plugin_sdk::{ConnectorPlugin, SyncRequest};
//!
//! let mut steps = DavConnector::new().sync(ctx, None, SyncRequest::incremental());
//! while let Some(step) = steps.next().await {
//!     // Items, and checkpoints to store as the cursor.
//! }
//! # }
//! ```

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tracing::Instrument;
use tributary_plugin_sdk::{
    ConnectorPlugin, Cursor, PluginContext, PluginError, SyncRequest, SyncStep,
};

mod client;
mod config;
mod cursor;
mod discovery;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod href;
mod ical;
mod listing;
mod map;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
mod vcard;
mod webdav;
mod xml;

/// The plugin manifest, `plugin.json`.
pub const MANIFEST: &str = include_str!("../plugin.json");

/// The manifest's entrypoint: how the plugin manager finds this built-in plugin.
pub const ENTRYPOINT: &str = "builtin:dav";

/// Resources fetched per multiget request, and items between two checkpoints at most.
pub const DEFAULT_BATCH_SIZE: usize = 50;

/// The CardDAV / CalDAV connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DavConnector {
    /// Resources per multiget; a checkpoint follows each batch.
    batch_size: usize,
}

impl DavConnector {
    /// A connector fetching [`DEFAULT_BATCH_SIZE`] resources per request.
    pub fn new() -> Self {
        DavConnector {
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// A connector fetching `batch_size` resources per request (at least one), and so
    /// checkpointing more or less often.
    pub fn with_batch_size(batch_size: usize) -> Self {
        DavConnector {
            batch_size: batch_size.max(1),
        }
    }

    /// Resources fetched per request.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl Default for DavConnector {
    fn default() -> Self {
        DavConnector::new()
    }
}

impl ConnectorPlugin for DavConnector {
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let span = ctx.span().clone();
        let run = sync::SyncRun::new(ctx, cursor, request, self.batch_size);
        stream::try_unfold(run, move |mut run| {
            let span = span.clone();
            async move {
                let steps = run.next_steps().instrument(span).await?;
                Ok::<_, PluginError>(steps.map(|steps| (steps, run)))
            }
        })
        .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_manifest_is_valid_and_names_the_entrypoint() {
        let manifest =
            tributary_plugin_sdk::validate_manifest(Path::new(env!("CARGO_MANIFEST_DIR")))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(manifest.id, "tributary.dav");
        assert_eq!(manifest.entrypoint, ENTRYPOINT);
        assert_eq!(
            manifest.config_schema["properties"]["password"]["writeOnly"],
            true
        );
        let parsed: serde_json::Value = serde_json::from_str(MANIFEST).unwrap();
        assert_eq!(parsed["id"], "tributary.dav");
    }

    #[test]
    fn a_batch_holds_at_least_one_resource() {
        assert_eq!(DavConnector::with_batch_size(0).batch_size(), 1);
        assert_eq!(DavConnector::default().batch_size(), DEFAULT_BATCH_SIZE);
    }
}
