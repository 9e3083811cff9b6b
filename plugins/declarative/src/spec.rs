//! The connector spec: what a `declarative:<file>.toml` entrypoint names, read with serde.
//!
//! Every struct refuses unknown keys, so a typo is an error, never a silently ignored
//! setting. Strings documented as *templates* are minijinja templates (`{{ config.tenant }}`);
//! strings documented as *expressions* are minijinja expressions (`body.value`,
//! `record['@removed'] is defined`). See `docs/declarative-connectors.md`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tributary_proto::EntityType;

/// A whole spec file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The spec format's version; `1`.
    pub version: u32,
    /// Template of the API's base URL over `config` (`https://api.example.com/v2`,
    /// `https://{{ config.subdomain }}.zendesk.com`), rendered once per sync and available to
    /// the other templates as `base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// How requests authenticate; the same for every stream.
    #[serde(default)]
    pub auth: Auth,
    /// Which answers are retried, which fail the sync, and how many requests a sync may make.
    #[serde(default)]
    pub errors: Errors,
    /// What to sync, in order; a stream may name an earlier one as its partitions' parent.
    pub streams: Vec<Stream>,
}

/// How every request authenticates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// An API key in a header or a query parameter.
    ApiKey {
        /// `header` or `query`.
        #[serde(rename = "in")]
        location: KeyLocation,
        /// The header's or parameter's name (`X-Api-Key`, `api_key`).
        name: String,
        /// Template of the key, usually `{{ config.apiKey }}` (a `writeOnly` config field).
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Template of the token, usually `{{ config.token }}`.
        token: String,
    },
    /// HTTP basic authentication.
    Basic {
        /// Template of the user name.
        username: String,
        /// Template of the password.
        password: String,
    },
    /// OAuth 2.0 through the plugin manager's token broker: the manifest's `auth` section
    /// says how to connect, and the host attaches the access token to every request to a
    /// granted host. The spec adds no header.
    Oauth,
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
}

/// How answers that are not successes are handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// Statuses retried with backoff, honouring `Retry-After`. The host's client always
    /// retries 429 and 5xx; statuses listed here besides those (408, 425) are retried by the
    /// engine, up to three attempts.
    #[serde(default = "default_retry")]
    pub retry: Vec<u16>,
    /// Statuses retried only when the answer says so: an expression over `status`, `body`
    /// and `headers` (Google's `403` is a rate limit when `body.error.errors[0].reason` is
    /// `rateLimitExceeded`, and a refusal otherwise). Retried by the engine with backoff,
    /// honouring `Retry-After`, up to three attempts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_when: Vec<RetryRule>,
    /// Statuses that fail the sync with a message of the spec's own.
    #[serde(default)]
    pub fail: Vec<FailRule>,
    /// The most requests one sync may make, all streams and pages together; `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u32>,
}

impl Default for Errors {
    fn default() -> Self {
        Errors {
            retry: default_retry(),
            retry_when: Vec::new(),
            fail: Vec::new(),
            max_requests: None,
        }
    }
}

fn default_retry() -> Vec<u16> {
    vec![429, 500, 502, 503, 504]
}

/// A status retried when an expression over the answer is true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// The HTTP status.
    pub status: u16,
    /// Expression over `status`, `body` (the answer's JSON) and `headers`, besides `config`:
    /// true when the answer is worth asking again.
    pub when: String,
}

/// A status that fails the sync with a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRule {
    /// The HTTP status.
    pub status: u16,
    /// Template of the message; `status` and `body` (the answer's JSON, if it is JSON) are
    /// available besides `config`.
    pub message: String,
}

/// One kind of record the API lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// Unique within the spec; names the stream in the cursor and in errors.
    pub name: String,
    /// Expression over `config`: the stream is synced only when it is true (a config flag
    /// that turns a stream off, `config.mail is not defined or config.mail`); always, without
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The first request of a listing.
    pub request: Request,
    /// Where the records are in an answer.
    pub records: Records,
    /// How to get the next page.
    #[serde(default)]
    pub pagination: Pagination,
    /// Several listings of the same request, one per partition value (`partition` in
    /// templates): a list from config, or a parent stream's records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Partitions>,
    /// How a later sync asks for changes only.
    #[serde(default)]
    pub changes: Changes,
    /// From a record to an item; a stream without one yields nothing (a parent listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Mapping>,
    /// More items made from each record, before `map`'s, each with a mapping of its own (a
    /// message's conversation, from the message's `conversationId`). A record a mapping's
    /// `skip` is true for makes no item of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Mapping>,
}

/// An HTTP request, templated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// Template of the URL: `{{ base_url }}/me/contacts`.
    pub url: String,
    /// Query parameters, each a template; one that renders empty is left out.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers, each a template; one that renders empty is left out.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Template of the body, sent as JSON (`Content-Type: application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Form fields, each a template, sent as the body
    /// (`Content-Type: application/x-www-form-urlencoded`), for APIs that read a form
    /// (Todoist's `/sync`); one that renders empty is left out. Not with `body`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub form: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// Where the records of an answer are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// Expression over `body` (the JSON answer) and `headers`, giving the list of records:
    /// `body.value`, `body.data.items`, `body` for an answer that is the list.
    pub path: String,
}

/// How the next page is asked for; the listing ends when there is none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// One page only.
    #[default]
    None,
    /// The answer names the next page's full URL (`@odata.nextLink`, `next`).
    NextUrl {
        /// Expression over `body` and `headers` giving the URL; none or empty: last page.
        next: String,
    },
    /// The `Link` header's `rel="next"` URL (RFC 8288; GitHub, Zendesk).
    LinkHeader,
    /// The answer holds a token the next request sends as a query parameter.
    Cursor {
        /// Expression over `body` and `headers` giving the token; none or empty: last page.
        token: String,
        /// The query parameter that carries it (`pageToken`, `cursor`, `start_cursor`).
        param: String,
    },
    /// `offset` and `limit` parameters; a page with fewer than `limit` records is the last.
    Offset {
        /// The offset parameter's name.
        offset_param: String,
        /// The limit parameter's name.
        limit_param: String,
        /// Records per page.
        limit: u64,
    },
    /// A page number; an empty page (or one of fewer than `size` records) is the last.
    PageNumber {
        /// The page parameter's name.
        param: String,
        /// The first page's number; 1 by default.
        #[serde(default = "one")]
        start: u64,
        /// The page size parameter's name, if the API takes one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_param: Option<String>,
        /// Records per page, sent as `size_param`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
}

fn one() -> u64 {
    1
}

/// Where a stream's partition values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum Partitions {
    /// A list in the config: an expression over `config` (`config.calendars`).
    Config {
        /// Expression giving the list.
        list: String,
    },
    /// The records of an earlier stream (calendars → their events).
    Parent {
        /// The parent stream's name.
        stream: String,
        /// Expression over `record` (a parent record) giving the partition value.
        value: String,
    },
}

/// How a later sync asks for changes only, and how the source says it cannot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Changes {
    /// Every sync lists everything.
    #[default]
    None,
    /// A datetime field of the records: the newest one seen is kept, and the next sync's
    /// templates get `state.since` (RFC 3339, UTC) that long before it.
    DatetimeCursor {
        /// Expression over `record` giving its modification time.
        field: String,
        /// How far before the newest time seen the next sync starts, in seconds, for records
        /// written while the last sync ran.
        #[serde(default)]
        lookback_seconds: u64,
    },
    /// The last page names a URL that lists the changes since (Graph's `@odata.deltaLink`):
    /// the next sync's first request.
    DeltaLink {
        /// Expression over `body` and `headers` giving the link.
        link: String,
        /// When the link has expired.
        #[serde(default)]
        expired: Expired,
    },
    /// The last page holds a token the next sync sends as a query parameter on each of its
    /// requests (Google's `nextSyncToken` → `syncToken`), or that the request's own
    /// templates send as `state.token`.
    SyncToken {
        /// Expression over `body` and `headers` giving the token.
        token: String,
        /// The query parameter that carries it. Without one, the request's templates send
        /// `state.token` themselves: in a form field or the body, or with a first-sync value
        /// of the API's own (Todoist's `sync_token = "{{ state.token or '*' }}"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
        /// When the token has expired.
        #[serde(default)]
        expired: Expired,
    },
}

/// What "the token expired, start over" looks like: the engine then forgets it and lists
/// everything again (a full resync of the stream or partition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expired {
    /// Statuses that say it; `[410]` by default.
    #[serde(default = "gone")]
    pub statuses: Vec<u16>,
    /// An expression over `status` and `body` that says it too, for APIs that answer 400
    /// with an error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl Default for Expired {
    fn default() -> Self {
        Expired {
            statuses: gone(),
            when: None,
        }
    }
}

fn gone() -> Vec<u16> {
    vec![410]
}

/// From a record to a unified-model item. Each value is an expression over `record`,
/// `config` and `partition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The entity type the items become.
    pub entity: EntityType,
    /// Expression giving the source's id: a string or a number.
    pub id: String,
    /// Expression giving the modification time (RFC 3339); none: the time of the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Expression that is true for a removal marker (`record['@removed'] is defined`): the
    /// item is then a deletion of `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
    /// Expression that is true for a record this mapping makes no item of (a removal marker
    /// that names no conversation, a record of another kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// The entity's fields (`display_name`, `emails`, …), each an expression; one that gives
    /// none is left out. The record itself is kept as the item's raw payload.
    pub fields: BTreeMap<String, String>,
}
