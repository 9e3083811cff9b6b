//! One sync run, as a sequence of small steps: each call of [`SyncRun::next_steps`] does one
//! request's worth of work (discovery, one collection's listing, one batch of tombstones or
//! one multiget) and returns what it yields, ending with a checkpoint whenever items were
//! yielded. At most one batch of contents is held at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, SubsecRound, Utc};
use tributary_plugin_sdk::{Cursor, PluginContext, PluginError, SyncMode, SyncRequest, SyncStep};

use crate::client::{DavClient, Depth};
use crate::config::CheckedConfig;
use crate::cursor::{CollectionState, DavCursor};
use crate::discovery::{discover, Collection};
use crate::href::{self, member_key, member_name};
use crate::listing::{changes_since, everything, Listed, Listing, ListingError};
use crate::map::{self, MapError, Resource};
use crate::webdav::{multiget_body, CollectionKind, DavResponse, GETETAG};
use crate::{ical, vcard};

/// A sync in progress.
pub(crate) struct SyncRun {
    settings: Settings,
    phase: Phase,
}

/// What a run was asked to do; fixed for the run.
struct Settings {
    ctx: PluginContext,
    mode: SyncMode,
    /// For a backfill: yield only what was modified, starts or recurs from then on.
    since: Option<DateTime<Utc>>,
    /// Resources per multiget, and tombstones per checkpoint.
    batch_size: usize,
    /// The version time of tombstones and of resources that state none.
    sync_time: DateTime<Utc>,
}

enum Phase {
    /// Nothing done yet; holds the cursor the service handed over.
    Start(Option<Cursor>),
    Running(Box<Running>),
    /// The final checkpoint has been yielded.
    Done,
}

struct Running {
    client: DavClient,
    cursor: DavCursor,
    /// Collections still to sync or to clear, in order.
    tasks: VecDeque<Task>,
    /// The collection being worked on.
    pass: Option<Pass>,
    /// Whether the last step yielded was a checkpoint, so the run need not end with another.
    checkpointed: bool,
}

enum Task {
    /// Sync this collection.
    Sync(Collection),
    /// A collection in the cursor no longer found (deleted, or no longer selected): its
    /// members are tombstoned and it leaves the cursor.
    Clear(String),
}

/// The work left on one collection.
struct Pass {
    key: String,
    kind: CollectionKind,
    /// Where multigets go; `None` when clearing a collection that is gone.
    url: Option<url::Url>,
    /// Member keys to tombstone.
    deletions: VecDeque<String>,
    /// Members to fetch, sorted by key.
    fetches: VecDeque<Listed>,
    /// What to store as the collection's token once the pass completes; `None` keeps the
    /// old one (a backfill does not move the cursor), `Some(None)` clears it.
    new_token: Option<Option<String>>,
}

impl SyncRun {
    /// A run for `request`, from `cursor`, fetching `batch_size` resources per multiget.
    pub fn new(
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
        batch_size: usize,
    ) -> Self {
        SyncRun {
            settings: Settings {
                ctx,
                mode: request.mode,
                since: request.since,
                batch_size: batch_size.max(1),
                // Microseconds, as the ETL stores versions.
                sync_time: Utc::now().trunc_subsecs(6),
            },
            phase: Phase::Start(cursor),
        }
    }

    /// The steps of the next unit of work (possibly none), or `None` when the run is over.
    pub async fn next_steps(&mut self) -> Result<Option<Vec<SyncStep>>, PluginError> {
        let running = match &mut self.phase {
            Phase::Done => return Ok(None),
            Phase::Start(cursor) => {
                let cursor = cursor.take();
                let running = self.settings.start(cursor).await?;
                self.phase = Phase::Running(Box::new(running));
                return Ok(Some(Vec::new()));
            }
            Phase::Running(running) => running,
        };
        let settings = &self.settings;
        let steps = match running.pass.take() {
            Some(mut pass) => {
                let (steps, finished) = settings.work_on(running, &mut pass).await?;
                if !finished {
                    running.pass = Some(pass);
                }
                steps
            }
            None => match running.tasks.pop_front() {
                Some(task) => {
                    running.pass = Some(settings.begin(running, task).await?);
                    Vec::new()
                }
                None if running.checkpointed => {
                    self.phase = Phase::Done;
                    return Ok(None);
                }
                None => vec![SyncStep::Checkpoint(running.cursor.to_cursor()?)],
            },
        };
        if let Some(last) = steps.last() {
            running.checkpointed = matches!(last, SyncStep::Checkpoint(_));
        }
        Ok(Some(steps))
    }
}

impl Settings {
    /// Reads the config and cursor, and finds the collections.
    async fn start(&self, cursor: Option<Cursor>) -> Result<Running, PluginError> {
        let config = CheckedConfig::from_context(&self.ctx)?;
        let cursor = DavCursor::read(cursor.as_ref())?;
        let client = DavClient::new(self.ctx.http().clone(), config.username, config.password);
        let collections = discover(&client, &config.url, config.collections.as_deref()).await?;
        tracing::info!(
            parent: self.ctx.span(),
            collections = collections.len(),
            mode = ?self.mode,
            "Found the collections to sync."
        );
        let found: BTreeSet<&str> = collections.iter().map(|c| c.key.as_str()).collect();
        let mut tasks: VecDeque<Task> = VecDeque::new();
        if self.mode != SyncMode::Backfill {
            tasks.extend(
                cursor
                    .collections
                    .keys()
                    .filter(|key| !found.contains(key.as_str()))
                    .map(|key| Task::Clear(key.clone())),
            );
        }
        tasks.extend(collections.into_iter().map(Task::Sync));
        Ok(Running {
            client,
            cursor,
            tasks,
            pass: None,
            checkpointed: false,
        })
    }

    /// Lists a collection and plans what to tombstone and fetch.
    async fn begin(&self, running: &mut Running, task: Task) -> Result<Pass, PluginError> {
        let collection = match task {
            Task::Clear(key) => {
                let state = running.cursor.collections.get(&key);
                tracing::info!(parent: self.ctx.span(), collection = %key, "A collection synced before is gone; its members are deleted.");
                return Ok(Pass {
                    kind: state.map_or(CollectionKind::Addressbook, |s| s.kind),
                    deletions: state
                        .map(|s| s.members.keys().map(|n| member_key(&key, n)).collect())
                        .unwrap_or_default(),
                    key,
                    url: None,
                    fetches: VecDeque::new(),
                    new_token: None,
                });
            }
            Task::Sync(collection) => collection,
        };
        let state = running
            .cursor
            .collections
            .entry(collection.key.clone())
            .or_insert_with(|| CollectionState::new(collection.kind));
        state.kind = collection.kind;
        let listing = self.list(&running.client, &collection, state).await?;
        let refetch_all = self.mode != SyncMode::Incremental;
        let fetches: VecDeque<Listed> = listing
            .changed
            .values()
            .filter(|listed| {
                let name = member_name(&collection.key, &listed.key);
                refetch_all
                    || listed.etag.is_none()
                    || state.members.get(&name) != listed.etag.as_ref()
            })
            .cloned()
            .collect();
        let mut deletions = BTreeSet::new();
        if self.mode != SyncMode::Backfill {
            for name in state.members.keys() {
                let key = member_key(&collection.key, name);
                let gone = if listing.complete {
                    !listing.changed.contains_key(&key)
                } else {
                    listing.removed.contains(&key)
                };
                if gone {
                    deletions.insert(key);
                }
            }
        }
        tracing::info!(
            parent: self.ctx.span(),
            collection = %collection.key,
            complete = listing.complete,
            to_fetch = fetches.len(),
            to_delete = deletions.len(),
            "Listed a collection."
        );
        Ok(Pass {
            key: collection.key,
            kind: collection.kind,
            url: Some(collection.url),
            deletions: deletions.into_iter().collect(),
            fetches,
            new_token: (self.mode != SyncMode::Backfill).then_some(listing.token),
        })
    }

    /// The members to look at: the changes since the token when the sync is incremental and
    /// the server still accepts it, else every member.
    async fn list(
        &self,
        client: &DavClient,
        collection: &Collection,
        state: &CollectionState,
    ) -> Result<Listing, PluginError> {
        if let (SyncMode::Incremental, Some(token)) = (self.mode, &state.sync_token) {
            match changes_since(client, collection, token).await {
                Ok(listing) => return Ok(listing),
                Err(ListingError::TokenRefused(reason)) => {
                    tracing::warn!(parent: self.ctx.span(), collection = %collection.key, %reason, "The server no longer accepts the sync token; listing the whole collection.");
                }
                Err(ListingError::Failed(e)) => return Err(e),
            }
        }
        everything(client, collection).await
    }

    /// One batch of the pass: tombstones first, then one multiget; when nothing is left,
    /// stores the collection's new token (or drops a cleared collection) and says the pass
    /// is finished. Each batch ends with a checkpoint.
    async fn work_on(
        &self,
        running: &mut Running,
        pass: &mut Pass,
    ) -> Result<(Vec<SyncStep>, bool), PluginError> {
        let mut steps = Vec::new();
        let mut finished = false;
        if !pass.deletions.is_empty() {
            let count = pass.deletions.len().min(self.batch_size);
            for key in pass.deletions.drain(..count) {
                if let Some(state) = running.cursor.collections.get_mut(&pass.key) {
                    state.members.remove(&member_name(&pass.key, &key));
                }
                steps.push(self.tombstone(pass.kind, &key));
            }
        } else if !pass.fetches.is_empty() {
            let count = pass.fetches.len().min(self.batch_size);
            let batch: Vec<Listed> = pass.fetches.drain(..count).collect();
            steps = self.fetch(running, pass, &batch).await?;
        } else {
            match pass.url {
                None => {
                    running.cursor.collections.remove(&pass.key);
                }
                Some(_) => {
                    if let (Some(token), Some(state)) = (
                        pass.new_token.take(),
                        running.cursor.collections.get_mut(&pass.key),
                    ) {
                        state.sync_token = token;
                    }
                }
            }
            finished = true;
        }
        steps.push(SyncStep::Checkpoint(running.cursor.to_cursor()?));
        Ok((steps, finished))
    }

    /// Fetches `batch` with one multiget and maps each resource.
    async fn fetch(
        &self,
        running: &mut Running,
        pass: &Pass,
        batch: &[Listed],
    ) -> Result<Vec<SyncStep>, PluginError> {
        let Some(url) = &pass.url else {
            return Ok(Vec::new());
        };
        // Depth 1, as in RFC 6352's examples and its erratum 4610; servers ignore it.
        let answer = running
            .client
            .report(
                url,
                Depth::One,
                multiget_body(pass.kind, batch.iter().map(|l| l.href.as_str())),
            )
            .await?;
        let Some(state) = running.cursor.collections.get_mut(&pass.key) else {
            return Ok(Vec::new());
        };
        let by_key: BTreeMap<String, &DavResponse> = answer
            .responses
            .iter()
            .flat_map(|r| r.hrefs.iter().map(move |h| (h, r)))
            .filter_map(|(h, r)| Some((href::path_key(&href::resolve(&answer.base, h)?), r)))
            .collect();
        let mut steps = Vec::new();
        for listed in batch {
            let name = member_name(&pass.key, &listed.key);
            let Some(response) = by_key.get(&listed.key) else {
                tracing::warn!(parent: self.ctx.span(), resource = %listed.key, "The server left a requested resource out of its answer; it is fetched again next time.");
                continue;
            };
            if response.is_not_found() {
                if state.members.remove(&name).is_some() {
                    steps.push(self.tombstone(pass.kind, &listed.key));
                }
                continue;
            }
            let Some(text) = response
                .prop(pass.kind.data_prop())
                .map(|p| p.text.as_str())
            else {
                tracing::warn!(parent: self.ctx.span(), resource = %listed.key, "The server sent no content for a resource; it is fetched again next time.");
                continue;
            };
            let etag = response.prop_text(GETETAG).or_else(|| listed.etag.clone());
            let mapped = match pass.kind {
                CollectionKind::Addressbook => vcard::map_vcard(text),
                CollectionKind::Calendar => ical::map_icalendar(text),
            };
            match mapped {
                Ok(mapped) => {
                    if self.since.is_some_and(|since| !mapped.is_since(since)) {
                        continue;
                    }
                    let resource = Resource {
                        key: &listed.key,
                        href: &listed.href,
                        etag: etag.as_deref(),
                        text,
                    };
                    steps.push(SyncStep::Item(map::upsert(
                        self.ctx.instance_id(),
                        pass.kind,
                        resource,
                        mapped,
                        self.sync_time,
                    )));
                    state.members.insert(name, etag.unwrap_or_default());
                }
                Err(MapError::NoEvent) => {
                    // A resource that was an event and no longer holds one is gone as an event.
                    if state.members.remove(&name).is_some() {
                        steps.push(self.tombstone(pass.kind, &listed.key));
                    }
                }
                Err(error) => {
                    tracing::warn!(parent: self.ctx.span(), resource = %listed.key, %error, "Skipped a resource that cannot be read.");
                }
            }
        }
        Ok(steps)
    }

    fn tombstone(&self, kind: CollectionKind, key: &str) -> SyncStep {
        SyncStep::Item(map::tombstone(
            self.ctx.instance_id(),
            kind,
            key,
            self.sync_time,
        ))
    }
}
