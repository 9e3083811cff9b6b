//! Running a spec: one page per step, items then a checkpoint, so a sync holds one page at a
//! time, stops when the service stops asking (cancel drops the stream) and resumes after a
//! kill from the last checkpoint.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use minijinja::Environment;
use reqwest::header::{HeaderMap, LINK, RETRY_AFTER};
use serde_json::{json, Value as Json};
use tributary_plugin_sdk::secrecy::SecretString;
use tributary_plugin_sdk::{
    parse_retry_after, ConnectorItem, ConnectorPlugin, Cursor, ItemOperation, PluginContext,
    PluginError, RetryPolicy, SyncMode, SyncRequest, SyncStep,
};

use crate::cursor::{EngineCursor, PartitionState, Position};
use crate::expr::{self, Compiled, Expr, LazyContext};
use crate::spec::{Auth, Changes, KeyLocation, Mapping, Pagination, Partitions, Spec, Stream};
use crate::validate::reqwest_method;

/// Attempts of a request the engine retries itself (statuses in `errors.retry` the host's
/// client does not retry).
const ENGINE_ATTEMPTS: u32 = 3;
/// How much of an error answer goes into the error.
const ERROR_BODY_CHARS: usize = 300;

/// A connector run from a spec; see the [crate] documentation.
#[derive(Debug, Clone)]
pub struct DeclarativeConnector {
    spec: Arc<Spec>,
    /// Replaces the spec's `base_url`: for tests against a local server.
    base_url: Option<String>,
}

impl DeclarativeConnector {
    /// A connector running `spec` (already validated against its manifest).
    pub fn new(spec: Spec) -> Self {
        DeclarativeConnector {
            spec: Arc::new(spec),
            base_url: None,
        }
    }

    /// The same connector with the spec's `base_url` replaced, so that a test points a
    /// built-in spec at a local server.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// The spec it runs.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }
}

impl ConnectorPlugin for DeclarativeConnector {
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let run = Run::new(self.clone(), ctx, cursor, request);
        stream::try_unfold(run, |mut run| async move {
            let steps = run.next_steps().await?;
            Ok::<_, PluginError>(steps.map(|steps| (steps, run)))
        })
        .map_ok(|steps: Vec<SyncStep>| stream::iter(steps.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}

/// One sync in progress.
struct Run {
    spec: Arc<Spec>,
    env: Arc<Environment<'static>>,
    /// The spec's expressions, compiled once for the sync.
    compiled: Compiled,
    ctx: PluginContext,
    mode: SyncMode,
    /// For a backfill: the `state.since` of datetime cursors.
    backfill_since: Option<DateTime<Utc>>,
    /// The version of items that state none, and of deletions.
    sync_time: DateTime<Utc>,
    /// `base_url` rendered with the instance's config, as validation renders it, for
    /// templates.
    base_url: Json,
    cursor: EngineCursor,
    /// An unreadable cursor handed over, or a `base_url` that does not render: reported on
    /// the first step.
    cursor_error: Option<PluginError>,
    /// The stream being synced, by index.
    stream: usize,
    /// The current stream's partitions still to sync; `None`: not listed yet.
    partitions: Option<VecDeque<Json>>,
    /// The partition being synced.
    current: Option<Json>,
    /// Partitions whose state a full sync has set aside already in this run.
    reset: BTreeSet<(String, String)>,
    /// Partitions that started over in this run because the API said their sync state
    /// expired: a second refusal fails the sync, so a server that refuses every cursor
    /// cannot make it start over forever.
    resynced: BTreeSet<(String, String)>,
    /// Requests made, against `errors.max_requests`.
    requests: u32,
    finished: bool,
}

impl Run {
    fn new(
        connector: DeclarativeConnector,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        request: SyncRequest,
    ) -> Self {
        let (cursor, cursor_error) = match cursor.map(|c| c.parse::<EngineCursor>()) {
            None => (EngineCursor::default(), None),
            Some(Ok(cursor)) => (cursor, None),
            Some(Err(e)) => (EngineCursor::default(), Some(e)),
        };
        let env = expr::environment();
        let base_url = connector
            .base_url
            .clone()
            .or_else(|| connector.spec.base_url.clone());
        // A templated base (`https://{{ config.subdomain }}.zendesk.com`) is rendered once:
        // the host it gives is checked against the grants on every request, like any other.
        let (base_url, cursor_error) = match base_url.map(|base| {
            expr::render(
                &env,
                "base_url",
                &base,
                &expr::context(&[("config", ctx.config())]),
            )
        }) {
            None => (Json::Null, cursor_error),
            Some(Ok(base)) => (Json::String(base), cursor_error),
            Some(Err(e)) => (Json::Null, cursor_error.or(Some(e))),
        };
        Run {
            env,
            compiled: Compiled::default(),
            base_url,
            spec: connector.spec,
            ctx,
            mode: request.mode,
            backfill_since: request.since,
            sync_time: Utc::now(),
            cursor,
            cursor_error,
            stream: 0,
            partitions: None,
            current: None,
            reset: BTreeSet::new(),
            resynced: BTreeSet::new(),
            requests: 0,
            finished: false,
        }
    }

    /// The steps of the next page; `None` when the sync is complete.
    async fn next_steps(&mut self) -> Result<Option<Vec<SyncStep>>, PluginError> {
        if let Some(error) = self.cursor_error.take() {
            return Err(error);
        }
        let spec = self.spec.clone();
        loop {
            let Some(stream) = spec.streams.get(self.stream) else {
                if self.finished {
                    return Ok(None);
                }
                self.finished = true;
                return Ok(Some(vec![SyncStep::Checkpoint(Cursor::new(&self.cursor)?)]));
            };
            // A listing without a mapping only names its records to the streams below it.
            if (stream.map.is_none() && stream.also.is_empty()) || !self.wanted(stream)? {
                self.stream += 1;
                continue;
            }
            if self.partitions.is_none() {
                self.partitions = Some(self.partition_values(stream).await?);
            }
            if self.current.is_none() {
                match self.partitions.as_mut().and_then(VecDeque::pop_front) {
                    Some(value) => self.current = Some(value),
                    None => {
                        self.stream += 1;
                        self.partitions = None;
                        continue;
                    }
                }
            }
            let partition = self.current.clone().unwrap_or(Json::Null);
            let (steps, done) = self.page(stream, &partition).await?;
            if done {
                self.current = None;
            }
            return Ok(Some(steps));
        }
    }

    /// Whether `stream` is synced: its `when`, if any, is true for this instance's config.
    fn wanted(&self, stream: &Stream) -> Result<bool, PluginError> {
        match &stream.when {
            None => Ok(true),
            Some(when) => {
                let ctx =
                    expr::context(&[("config", self.ctx.config()), ("base_url", &self.base_url)]);
                Expr::compile(&self.env, format!("streams.{}.when", stream.name), when)?
                    .truthy(&ctx)
            }
        }
    }

    /// The partition values of `stream`: `[null]` without partitions.
    async fn partition_values(&mut self, stream: &Stream) -> Result<VecDeque<Json>, PluginError> {
        let at = format!("streams.{}.partitions", stream.name);
        match &stream.partitions {
            None => Ok(VecDeque::from([Json::Null])),
            Some(Partitions::Config { list }) => {
                let ctx =
                    expr::context(&[("config", self.ctx.config()), ("base_url", &self.base_url)]);
                let list = Expr::compile(&self.env, format!("{at}.list"), list)?.json(&ctx)?;
                match list {
                    Json::Null => Ok(VecDeque::new()),
                    Json::Array(values) => Ok(values.into()),
                    other => Ok(VecDeque::from([other])),
                }
            }
            Some(Partitions::Parent {
                stream: parent,
                value,
            }) => {
                let spec = self.spec.clone();
                let parent = spec
                    .streams
                    .iter()
                    .find(|s| &s.name == parent)
                    .ok_or_else(|| {
                        PluginError::Other(format!("{at}.stream: `{parent}` names no stream"))
                    })?;
                let value = self.compiled.get(format!("{at}.value"), value)?;
                let mut values = VecDeque::new();
                let mut position = Position::Start;
                let state = PartitionState::default();
                loop {
                    let page = match self.fetch(parent, &Json::Null, &state, &position).await {
                        Ok(page) => page,
                        Err(Fetched::Failed(e)) => return Err(e),
                        Err(Fetched::Expired(message)) => {
                            return Err(PluginError::Other(format!(
                                "stream {}: {message}",
                                parent.name
                            )))
                        }
                    };
                    let records = self.record_context(&Json::Null);
                    for record in page.records {
                        let record = Arc::new(record);
                        let make = || records.with(&record);
                        let v = value.json_in("record", &record, &LazyContext::new(&make))?;
                        if !v.is_null() {
                            values.push_back(v);
                        }
                    }
                    match page.next {
                        Some(next) => position = next,
                        None => return Ok(values),
                    }
                }
            }
        }
    }

    /// One page of `stream` in `partition`: its items and a checkpoint, and whether the
    /// listing is complete.
    async fn page(
        &mut self,
        stream: &Stream,
        partition: &Json,
    ) -> Result<(Vec<SyncStep>, bool), PluginError> {
        let key = partition_key(partition);
        let mut state = self.cursor.get(&stream.name, &key);
        if self.mode != SyncMode::Incremental
            && self.reset.insert((stream.name.clone(), key.clone()))
        {
            state = PartitionState::default();
        }
        let page = loop {
            let position = self.position(stream, &mut state);
            match self.fetch(stream, partition, &state, &position).await {
                Err(Fetched::Expired(message)) => {
                    let again = self.resynced.contains(&(stream.name.clone(), key.clone()));
                    if again || state == PartitionState::default() {
                        return Err(expired_again(stream, partition, again, &message));
                    }
                    self.ctx.log_warn(&format!(
                        "Stream {} says its sync state expired ({message}); listing everything again.",
                        stream.name
                    ));
                    self.resynced.insert((stream.name.clone(), key.clone()));
                    state = PartitionState::default();
                    state.run_since = self.backfill_since;
                }
                Err(Fetched::Failed(e)) => return Err(e),
                Ok(page) => break page,
            }
        };
        let mut steps = Vec::with_capacity(page.records.len() + 1);
        let mappers = stream
            .also
            .iter()
            .enumerate()
            .map(|(j, map)| (format!("streams.{}.also[{j}]", stream.name), map))
            .chain(
                stream
                    .map
                    .iter()
                    .map(|map| (format!("streams.{}.map", stream.name), map)),
            )
            .map(|(at, map)| Mapper::compile(&self.compiled, at, map))
            .collect::<Result<Vec<_>, _>>()?;
        if !mappers.is_empty() {
            let field = match &stream.changes {
                Changes::DatetimeCursor { field, .. } => Some(
                    self.compiled
                        .get(format!("streams.{}.changes.field", stream.name), field)?,
                ),
                _ => None,
            };
            let records = self.record_context(partition);
            for record in page.records {
                let record = Arc::new(record);
                let make = || records.with(&record);
                let ctx = LazyContext::new(&make);
                if let Some(field) = &field {
                    if let Some(seen) = field
                        .string_in("record", &record, &ctx)?
                        .and_then(|s| parse_time(&s))
                    {
                        state.running_max = state.running_max.max(Some(seen));
                    }
                }
                for mapper in &mappers {
                    if let Some(item) =
                        mapper.item(self.ctx.instance_id(), &record, &ctx, self.sync_time)?
                    {
                        steps.push(SyncStep::Item(item));
                    }
                }
            }
        }
        let done = match page.next {
            Some(next) => {
                state.resume = Some(next);
                false
            }
            None => {
                state.resume = None;
                match &stream.changes {
                    Changes::None => {}
                    Changes::DatetimeCursor { .. } => {
                        state.since = state.since.max(state.running_max);
                    }
                    Changes::DeltaLink { .. } | Changes::SyncToken { .. } => {
                        if page.delta.is_none() {
                            self.ctx.log_warn(&format!(
                                "Stream {} ended without a delta link or sync token; the next sync lists everything.",
                                stream.name
                            ));
                        }
                        state.delta = page.delta;
                    }
                }
                state.running_max = None;
                state.run_since = None;
                true
            }
        };
        self.cursor.set(&stream.name, &key, state);
        steps.push(SyncStep::Checkpoint(Cursor::new(&self.cursor)?));
        Ok((steps, done))
    }

    /// Where the next request of a listing goes: where one in progress got to, else the
    /// delta link of the last complete one, else the start. Starting, it fixes `state.since`.
    fn position(&self, stream: &Stream, state: &mut PartitionState) -> Position {
        if let Some(resume) = &state.resume {
            return resume.clone();
        }
        if let Changes::DatetimeCursor {
            lookback_seconds, ..
        } = &stream.changes
        {
            state.run_since = match (self.mode, self.backfill_since) {
                (SyncMode::Backfill, since) => since,
                _ => state
                    .since
                    .map(|since| since - chrono::Duration::seconds(*lookback_seconds as i64)),
            };
        }
        match (&stream.changes, &state.delta) {
            (Changes::DeltaLink { .. }, Some(link)) => Position::Url(link.clone()),
            _ => Position::Start,
        }
    }

    /// The context of request templates.
    fn request_context(&self, partition: &Json, state: &PartitionState) -> minijinja::Value {
        let state = state_json(state);
        expr::context(&[
            ("config", self.ctx.config()),
            ("state", &state),
            ("partition", partition),
            ("base_url", &self.base_url),
        ])
    }

    /// The context of `partition`'s records, for each record to join.
    fn record_context(&self, partition: &Json) -> expr::RecordContext {
        expr::RecordContext::new(&[
            ("config", self.ctx.config()),
            ("partition", partition),
            ("base_url", &self.base_url),
        ])
    }

    /// Asks for one page at `position` and reads it.
    async fn fetch(
        &mut self,
        stream: &Stream,
        partition: &Json,
        state: &PartitionState,
        position: &Position,
    ) -> Result<Page, Fetched> {
        let at = format!("streams.{}", stream.name);
        let ctx = self.request_context(partition, state);
        let (status, headers, mut body, url) = self.send(stream, &ctx, state, position).await?;
        let make = || {
            let state = state_json(state);
            let headers = headers_json(&headers);
            expr::context(&[
                ("config", self.ctx.config()),
                ("state", &state),
                ("partition", partition),
                ("base_url", &self.base_url),
                ("body", &body),
                ("headers", &headers),
                ("status", &json!(status)),
            ])
        };
        // Made only for an expression that is more than a path into the body.
        let response_ctx = LazyContext::new(&make);
        let expired = match &stream.changes {
            Changes::DeltaLink { expired, .. } | Changes::SyncToken { expired, .. } => {
                Some(expired)
            }
            Changes::None | Changes::DatetimeCursor { .. } => None,
        };
        if let Some(expired) = expired {
            let by_status = expired.statuses.contains(&status);
            let by_body = match &expired.when {
                Some(when) if status >= 400 => self
                    .compiled
                    .get(format!("{at}.changes.expired.when"), when)?
                    .truthy_in("body", &body, &response_ctx)?,
                _ => false,
            };
            if by_status || by_body {
                return Err(Fetched::Expired(format!(
                    "HTTP {status}: {}",
                    snippet(&body.to_string())
                )));
            }
        }
        if let Some(rule) = self.spec.errors.fail.iter().find(|r| r.status == status) {
            let message = expr::render(
                &self.env,
                "errors.fail.message",
                &rule.message,
                response_ctx.get(),
            )?;
            return Err(Fetched::Failed(PluginError::Other(message)));
        }
        if status >= 400 {
            return Err(Fetched::Failed(PluginError::Http {
                status,
                message: format!("stream {}: {}", stream.name, snippet(&body.to_string())),
            }));
        }
        let records_path = self
            .compiled
            .get(format!("{at}.records.path"), &stream.records.path)?;
        // A plain path's records are read in the body, and taken out of it (not copied) once
        // the page's other expressions have seen the whole body.
        let evaluated = match records_path.lookup_ref("body", &body) {
            Some(_) => None,
            None => Some(records_path.json(response_ctx.get())?),
        };
        let count = match evaluated
            .as_ref()
            .or_else(|| records_path.lookup_ref("body", &body))
        {
            None | Some(Json::Null) => 0,
            Some(Json::Array(records)) => records.len(),
            Some(other) => {
                return Err(Fetched::Failed(PluginError::Other(format!(
                    "{at}.records.path gives {}, not a list of records",
                    kind_of(other)
                ))))
            }
        };
        let next = self.next_position(
            stream,
            (&body, &response_ctx),
            &headers,
            &url,
            position,
            count,
        )?;
        let delta = match &stream.changes {
            Changes::DeltaLink { link, .. } if next.is_none() => self
                .compiled
                .get(format!("{at}.changes.link"), link)?
                .string_in("body", &body, &response_ctx)?,
            Changes::SyncToken { token, .. } if next.is_none() => self
                .compiled
                .get(format!("{at}.changes.token"), token)?
                .string_in("body", &body, &response_ctx)?,
            _ => None,
        };
        drop(response_ctx);
        let records = match evaluated.or_else(|| records_path.take("body", &mut body)) {
            Some(Json::Array(records)) => records,
            _ => Vec::new(),
        };
        Ok(Page {
            records,
            next,
            delta,
        })
    }

    /// The page after this one, if any.
    fn next_position(
        &self,
        stream: &Stream,
        // The answer's body, and its context for expressions that are not paths into it.
        (body, ctx): (&Json, &LazyContext),
        headers: &HeaderMap,
        url: &url::Url,
        position: &Position,
        records: usize,
    ) -> Result<Option<Position>, PluginError> {
        let at = format!("streams.{}.pagination", stream.name);
        Ok(match &stream.pagination {
            Pagination::None => None,
            Pagination::NextUrl { next } => self
                .compiled
                .get(format!("{at}.next"), next)?
                .string_in("body", body, ctx)?
                .map(|next| absolute(url, &next))
                .map(Position::Url),
            Pagination::LinkHeader => {
                next_link(headers).map(|next| Position::Url(absolute(url, &next)))
            }
            Pagination::Cursor { token, .. } => self
                .compiled
                .get(format!("{at}.token"), token)?
                .string_in("body", body, ctx)?
                .map(Position::Token),
            Pagination::Offset { limit, .. } => {
                let offset = match position {
                    Position::Offset(offset) => *offset,
                    _ => 0,
                };
                (records as u64 >= *limit).then(|| Position::Offset(offset + records as u64))
            }
            Pagination::PageNumber { start, size, .. } => {
                let page = match position {
                    Position::Page(page) => *page,
                    _ => *start,
                };
                let full = match size {
                    Some(size) => records as u64 >= *size,
                    None => records > 0,
                };
                full.then_some(Position::Page(page + 1))
            }
        })
    }

    /// Sends the request for `position` through the instance's client (grants, rate limit,
    /// retries of 429 and 5xx with `Retry-After`), retrying the spec's other retry statuses
    /// itself. Answers status, headers, the body as JSON (`null` when empty, a string when
    /// not JSON) and the URL answered.
    async fn send(
        &mut self,
        stream: &Stream,
        ctx: &minijinja::Value,
        state: &PartitionState,
        position: &Position,
    ) -> Result<(u16, HeaderMap, Json, url::Url), Fetched> {
        let policy = RetryPolicy::default();
        let mut attempt = 1;
        loop {
            if let Some(max) = self.spec.errors.max_requests {
                if self.requests >= max {
                    return Err(Fetched::Failed(PluginError::Other(format!(
                        "the sync used up its request budget of {max} requests (errors.max_requests)"
                    ))));
                }
            }
            self.requests += 1;
            let request = self.build(stream, ctx, state, position)?;
            let response = request.fetch().await?;
            let status = response.status().as_u16();
            let engine_retries = !(status == 429 || status >= 500)
                && self.spec.errors.retry.contains(&status)
                && attempt < ENGINE_ATTEMPTS;
            if engine_retries {
                let wait = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .map_or_else(|| policy.backoff(attempt), |w| policy.server_wait(w));
                tracing::warn!(stream = %stream.name, status, attempt, ?wait, "Retrying a request the spec says to retry.");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let headers = response.headers().clone();
            let url = response.url().clone();
            let text = response
                .text()
                .await
                .map_err(|e| e.into_plugin_error(&stream.name))?;
            let body = if text.trim().is_empty() {
                Json::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Json::String(text))
            };
            if attempt < ENGINE_ATTEMPTS && self.retry_when(status, &headers, &body)? {
                let wait = headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .map_or_else(|| policy.backoff(attempt), |w| policy.server_wait(w));
                tracing::warn!(stream = %stream.name, status, attempt, ?wait, "Retrying a request the answer says to retry (errors.retry_when).");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return Ok((status, headers, body, url));
        }
    }

    /// Whether an `errors.retry_when` rule says to ask again for this answer.
    fn retry_when(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &Json,
    ) -> Result<bool, PluginError> {
        let mut ctx = None;
        for (i, rule) in self.spec.errors.retry_when.iter().enumerate() {
            if rule.status != status {
                continue;
            }
            let ctx = ctx.get_or_insert_with(|| {
                let headers = headers_json(headers);
                expr::context(&[
                    ("config", self.ctx.config()),
                    ("status", &json!(status)),
                    ("body", body),
                    ("headers", &headers),
                ])
            });
            if self
                .compiled
                .get(format!("errors.retry_when[{i}].when"), &rule.when)?
                .truthy(ctx)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The request for `position`: a URL the API named as it is, or the stream's request
    /// with its query and the page's parameters; with the spec's auth.
    fn build(
        &self,
        stream: &Stream,
        ctx: &minijinja::Value,
        state: &PartitionState,
        position: &Position,
    ) -> Result<tributary_plugin_sdk::HttpRequest, PluginError> {
        let at = format!("streams.{}.request", stream.name);
        let request = &stream.request;
        let method = reqwest_method(&request.method).ok_or_else(|| {
            PluginError::Other(format!(
                "{at}.method: `{}` is not an HTTP method",
                request.method
            ))
        })?;
        let mut query: Vec<(String, String)> = Vec::new();
        let url = match position {
            Position::Url(url) => url.clone(),
            _ => {
                for (name, value) in &request.query {
                    let value = expr::render(&self.env, &format!("{at}.query.{name}"), value, ctx)?;
                    if !value.is_empty() {
                        query.push((name.clone(), value));
                    }
                }
                match (&stream.pagination, position) {
                    (Pagination::Cursor { param, .. }, Position::Token(token)) => {
                        query.push((param.clone(), token.clone()));
                    }
                    (
                        Pagination::Offset {
                            offset_param,
                            limit_param,
                            limit,
                        },
                        _,
                    ) => {
                        let offset = match position {
                            Position::Offset(offset) => *offset,
                            _ => 0,
                        };
                        query.push((offset_param.clone(), offset.to_string()));
                        query.push((limit_param.clone(), limit.to_string()));
                    }
                    (
                        Pagination::PageNumber {
                            param,
                            start,
                            size_param,
                            size,
                        },
                        _,
                    ) => {
                        let page = match position {
                            Position::Page(page) => *page,
                            _ => *start,
                        };
                        query.push((param.clone(), page.to_string()));
                        if let (Some(size_param), Some(size)) = (size_param, size) {
                            query.push((size_param.clone(), size.to_string()));
                        }
                    }
                    _ => {}
                }
                if let (
                    Changes::SyncToken {
                        param: Some(param), ..
                    },
                    Some(token),
                ) = (&stream.changes, &state.delta)
                {
                    query.push((param.clone(), token.clone()));
                }
                expr::render(&self.env, &format!("{at}.url"), &request.url, ctx)?
            }
        };
        let mut http = self.ctx.http().request(method, &url);
        if !query.is_empty() {
            http = http.query(&query);
        }
        for (name, value) in &request.headers {
            let value = expr::render(&self.env, &format!("{at}.headers.{name}"), value, ctx)?;
            if !value.is_empty() {
                http = http.header(name, &value);
            }
        }
        if let Some(body) = &request.body {
            let body = expr::render(&self.env, &format!("{at}.body"), body, ctx)?;
            http = http.header("content-type", "application/json").body(body);
        } else if !request.form.is_empty() {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &request.form {
                let value = expr::render(&self.env, &format!("{at}.form.{name}"), value, ctx)?;
                if !value.is_empty() {
                    form.append_pair(name, &value);
                }
            }
            http = http
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.finish());
        }
        Ok(match &self.spec.auth {
            Auth::None | Auth::Oauth => http,
            Auth::ApiKey {
                location,
                name,
                value,
            } => {
                let value = expr::render(&self.env, "auth.value", value, ctx)?;
                match location {
                    KeyLocation::Header => http.header(name, &value),
                    KeyLocation::Query => http.query(&[(name.as_str(), value.as_str())]),
                }
            }
            Auth::Bearer { token } => {
                let token = expr::render(&self.env, "auth.token", token, ctx)?;
                http.bearer_auth(&SecretString::from(token))
            }
            Auth::Basic { username, password } => {
                let username = expr::render(&self.env, "auth.username", username, ctx)?;
                let password = expr::render(&self.env, "auth.password", password, ctx)?;
                http.basic_auth(&username, Some(&SecretString::from(password)))
            }
        })
    }
}

/// An error reading an answer's body, as the SDK's client gives it (a reqwest error, or the
/// SDK's own once it reads bodies itself).
trait ReadError {
    fn into_plugin_error(self, stream: &str) -> PluginError;
}

impl ReadError for reqwest::Error {
    fn into_plugin_error(self, stream: &str) -> PluginError {
        // Without the URL: its query may hold an API key.
        PluginError::Transient(format!(
            "stream {stream}: reading the answer: {}",
            self.without_url()
        ))
    }
}

impl ReadError for PluginError {
    fn into_plugin_error(self, _stream: &str) -> PluginError {
        self
    }
}

/// Why a page was not had.
enum Fetched {
    /// The API says the delta link or sync token expired.
    Expired(String),
    /// Anything else: the sync fails with it.
    Failed(PluginError),
}

impl From<PluginError> for Fetched {
    fn from(error: PluginError) -> Self {
        Fetched::Failed(error)
    }
}

/// One page read.
struct Page {
    records: Vec<Json>,
    /// The next page, if any.
    next: Option<Position>,
    /// On the last page: the delta link or sync token for the next sync.
    delta: Option<String>,
}

/// One of a stream's mappings, compiled for one page.
struct Mapper<'spec> {
    entity: tributary_plugin_sdk::EntityType,
    id: Arc<Expr<'static>>,
    modified: Option<Arc<Expr<'static>>>,
    deleted: Option<Arc<Expr<'static>>>,
    skip: Option<Arc<Expr<'static>>>,
    fields: Vec<(&'spec str, Arc<Expr<'static>>)>,
    /// The fields that are more than a path into the record, as one list expression
    /// (`[(a), (b)]`): one run of minijinja for them all instead of one each. Where it fails
    /// the fields are evaluated one by one, so an error is the one field's, as before.
    together: Option<(usize, Arc<Expr<'static>>)>,
}

impl<'spec> Mapper<'spec> {
    /// `map`, found at `at` in the spec (`streams.messages.also[0]`), with its expressions
    /// from the sync's `compiled` ones.
    fn compile(compiled: &Compiled, at: String, map: &'spec Mapping) -> Result<Self, PluginError> {
        let optional = |name: &str, source: &'spec Option<String>| {
            source
                .as_deref()
                .map(|source| compiled.get(format!("{at}.{name}"), source))
                .transpose()
        };
        let fields: Vec<(&str, Arc<Expr>)> = map
            .fields
            .iter()
            .map(|(name, source)| {
                compiled
                    .get(format!("{at}.fields.{name}"), source)
                    .map(|expr| (name.as_str(), expr))
            })
            .collect::<Result<_, _>>()?;
        let evaluated: Vec<String> = map
            .fields
            .values()
            .zip(&fields)
            .filter(|(_, (_, expr))| !expr.is_path_from("record"))
            .map(|(source, _)| format!("({source})"))
            .collect();
        let together = (evaluated.len() > 1)
            .then(|| {
                compiled
                    .get(
                        format!("{at}.fields"),
                        &format!("[{}]", evaluated.join(", ")),
                    )
                    .ok()
                    .map(|expr| (evaluated.len(), expr))
            })
            .flatten();
        Ok(Mapper {
            entity: map.entity,
            id: compiled.get(format!("{at}.id"), &map.id)?,
            modified: optional("modified", &map.modified)?,
            deleted: optional("deleted", &map.deleted)?,
            skip: optional("skip", &map.skip)?,
            fields,
            together,
        })
    }

    /// The item `record` makes; `None` when the mapping's `skip` says it makes none.
    fn item(
        &self,
        instance_id: &str,
        record: &Json,
        ctx: &LazyContext,
        sync_time: DateTime<Utc>,
    ) -> Result<Option<ConnectorItem>, PluginError> {
        if let Some(skip) = &self.skip {
            if skip.truthy_in("record", record, ctx)? {
                return Ok(None);
            }
        }
        let external_id = self.id.string_in("record", record, ctx)?.ok_or_else(|| {
            PluginError::Other(format!(
                "a record has no id (map.id gives none): {}",
                snippet(&record.to_string())
            ))
        })?;
        let deleted = match &self.deleted {
            Some(deleted) => deleted.truthy_in("record", record, ctx)?,
            None => false,
        };
        let modified = match &self.modified {
            Some(modified) => modified
                .string_in("record", record, ctx)?
                .and_then(|s| parse_time(&s)),
            None => None,
        };
        // A version from a fast clock is taken as now, so a later deletion is not older.
        let source_modified_at = modified.map_or(sync_time, |m| m.min(sync_time));
        let (operation, data) = if deleted {
            (ItemOperation::Delete, Json::Null)
        } else {
            let mut data = serde_json::Map::new();
            let mut together = self
                .together
                .as_ref()
                .and_then(|(count, together)| {
                    together
                        .json_list(ctx.get())
                        .filter(|values| values.len() == *count)
                })
                .map(Vec::into_iter);
            for (name, expr) in &self.fields {
                let value = match &mut together {
                    Some(values) if !expr.is_path_from("record") => match values.next() {
                        Some(value) => value,
                        None => expr.json_in("record", record, ctx)?,
                    },
                    _ => expr.json_in("record", record, ctx)?,
                };
                let empty = value.is_null() || value.as_str() == Some("");
                if !empty {
                    data.insert((*name).to_owned(), value);
                }
            }
            (ItemOperation::Upsert, Json::Object(data))
        };
        Ok(Some(ConnectorItem {
            instance_id: instance_id.to_owned(),
            entity_type: self.entity,
            external_id,
            operation,
            source_modified_at,
            data,
            raw: record.clone(),
        }))
    }
}

/// `state` as templates see it: `state.since` (RFC 3339) and `state.token`.
fn state_json(state: &PartitionState) -> Json {
    let mut out = serde_json::Map::new();
    if let Some(since) = state.run_since {
        out.insert(
            "since".to_owned(),
            Json::String(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        );
    }
    if let Some(token) = &state.delta {
        out.insert("token".to_owned(), Json::String(token.clone()));
    }
    Json::Object(out)
}

/// The error of a listing the API refused although it asked with no sync state, or again
/// during the full resync an earlier refusal started (`again`): starting over once more
/// would be refused the same way.
fn expired_again(stream: &Stream, partition: &Json, again: bool, message: &str) -> PluginError {
    let partition = match partition {
        Json::Null => String::new(),
        other => format!(" (partition {})", partition_key(other)),
    };
    let when = if again {
        "again during the full resync it started after an earlier refusal in this sync"
    } else {
        "on a full listing, which sends no sync state"
    };
    PluginError::Other(format!(
        "stream {}{partition}: the API refused the sync state {when} ({message}); the sync stops instead of starting over again",
        stream.name
    ))
}

/// Response headers for expressions, names lower-case.
fn headers_json(headers: &HeaderMap) -> Json {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            out.insert(name.as_str().to_owned(), Json::String(value.to_owned()));
        }
    }
    Json::Object(out)
}

/// The key of a partition in the cursor.
fn partition_key(partition: &Json) -> String {
    match partition {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `next` resolved against the URL that named it.
fn absolute(base: &url::Url, next: &str) -> String {
    base.join(next)
        .map_or_else(|_| next.to_owned(), |u| u.to_string())
}

/// The `rel="next"` target of a `Link` header (RFC 8288).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params.split(';').any(|param| {
                param.trim().strip_prefix("rel=").is_some_and(|rel| {
                    rel.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
                })
            });
            is_next.then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
        })
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn snippet(text: &str) -> String {
    let mut out: String = text.chars().take(ERROR_BODY_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The fields of `map` for `record`, or the error of the mapping.
    fn fields_of(map: &str, record: Json) -> Result<Json, String> {
        let map: Mapping = toml::from_str(map).unwrap();
        let compiled = Compiled::default();
        let mapper = Mapper::compile(&compiled, "streams.x.map".to_owned(), &map).unwrap();
        let record = Arc::new(record);
        let records = expr::RecordContext::new(&[("config", &json!({"tag": "t"}))]);
        let make = || records.with(&record);
        let ctx = LazyContext::new(&make);
        mapper
            .item("instance", &record, &ctx, Utc::now())
            .map(|item| item.unwrap().data)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn fields_evaluated_together_give_what_each_gives_alone_and_an_error_names_its_field() {
        let map = r#"
            entity = "person"
            id = "record.id"
            [fields]
            display_name = "record.first ~ ' ' ~ record.last"
            emails = "[record.email] | select | list"
            title = "record.title"
            nothing = "record.missing.deeper"
            tag = "config.tag"
            extra = "{'id': record.id, 'none': none}"
            empty = "''"
        "#;
        let record = json!({"id": 7, "first": "Ada", "last": "L", "email": "a@x", "title": "T"});
        assert_eq!(
            fields_of(map, record).unwrap(),
            json!({"display_name": "Ada L", "emails": ["a@x"], "title": "T", "tag": "t",
                   "extra": {"id": 7, "none": null}})
        );
        // A string plus a number fails: the error is that field's, with its place in the spec.
        let failing = map.replace(
            "\"{'id'",
            "\"(record.id + 1) if record.zero is defined else {'id'",
        );
        let error = fields_of(&failing, json!({"id": "1", "zero": 0})).unwrap_err();
        assert!(error.contains("streams.x.map.fields.extra"), "{error}");
    }

    #[test]
    fn the_next_link_of_a_link_header_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            r#"<https://api.example.com/x?page=1>; rel="prev", <https://api.example.com/x?page=3>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.example.com/x?page=3")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
