//! The `etl.people.*` requests the ETL answers: why a person is who she is, and what a person
//! decides about it.
//!
//! Reads: `etl.people.show` (a person with her source records, the merges that built her, the
//! decisions about her records, her open suggestions, and her messages and calendar events),
//! `etl.people.suggestions` (pairs that might be one person) and `etl.people.shared`
//! (identifiers too widely shared to merge on). Changes: `etl.people.unmerge.<caller>`,
//! `etl.people.merge.<caller>` and `etl.people.decide.<caller>`, whose last token is the NATS
//! user asking (`admin` for the CLI, `plugin-manager` for the admin HTTP API): NATS does not
//! tell a responder who sent a message, but deploy/nats-server.conf lets each of those users
//! publish only its own token, so the ETL knows who decided ([`PeopleChange::actor`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ErrorCode::{self, BadRequest, Conflict, Internal, NotFound};
use super::ApiError;
use crate::model::{EntityType, Person};
use crate::subjects::ServiceName;

/// Rows per page when a request names no `limit`.
pub const DEFAULT_PAGE: u32 = 50;
/// The most rows one page may hold.
pub const MAX_PAGE: u32 = 500;
/// The most messages, and the most calendar events, `etl.people.show` lists (the newest).
pub const LINKED_LIMIT: usize = 50;
/// The longest name a change may be made on behalf of, in characters.
pub const MAX_ACTOR_CHARS: usize = 200;

/// `etl.people.show`: one person and why she is who she is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowPerson {
    /// The person's id.
    pub id: Uuid,
}

/// The answer to `etl.people.show`: the person, or where she lives on when she was merged
/// into another (an id that was merged is not an error: follow `merged_into`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PersonShown {
    /// The person, live or deleted.
    Found(Box<PersonDetail>),
    /// The id was merged into another person.
    Merged {
        /// The id asked about.
        id: Uuid,
        /// The person it lives on in now (the end of the chain when she was merged again).
        merged_into: Uuid,
    },
}

/// A person, her sources and what happened to her.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonDetail {
    /// The person as stored (her fields are the merge of her live source records').
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub person: Person,
    /// Her source records, deleted ones too, in key order.
    pub sources: Vec<PersonSource>,
    /// The merges that built her, not undone: into her, and into each person merged into her,
    /// oldest first.
    pub merges: Vec<MergeView>,
    /// The decisions people made about her records, newest first.
    pub decisions: Vec<DecisionView>,
    /// The open suggestions naming one of her records, best first.
    pub suggestions: Vec<SuggestionView>,
    /// Her messages, newest first, at most [`LINKED_LIMIT`]: those sent by or to one of her
    /// addresses or numbers. An address another live person carries too counts only for
    /// messages from an instance one of her own records comes from.
    pub messages: Vec<LinkedMessage>,
    /// Her calendar events, newest start first, at most [`LINKED_LIMIT`]: those she organises
    /// or attends, by address, with the same rule as `messages`.
    pub events: Vec<LinkedEvent>,
}

/// A source record of a person, with the names and identifiers it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonSource {
    /// The plugin instance it came from.
    pub instance_id: String,
    /// Its id there.
    pub external_id: String,
    /// Always `person`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub entity_type: EntityType,
    /// The name it gives.
    pub display_name: String,
    /// Its given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Its family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Its e-mail addresses, normalised.
    pub emails: Vec<String>,
    /// Its phone numbers, in E.164.
    pub phones: Vec<String>,
    /// Its version: when the source last changed it.
    pub version: DateTime<Utc>,
    /// Whether the source deleted it.
    pub deleted: bool,
}

/// A source record, by its keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordRef {
    /// The plugin instance.
    pub instance_id: String,
    /// The record's id in that instance.
    pub external_id: String,
}

/// Which rule merged two people, as `person_merge` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MergeKind {
    /// They share a normalised e-mail address, and their names match.
    SharedEmail,
    /// They share a phone number, and their names match.
    SharedPhone,
    /// A person said they are one.
    Manual,
}

impl MergeKind {
    /// As stored (`shared_email`).
    pub fn as_str(self) -> &'static str {
        match self {
            MergeKind::SharedEmail => "shared_email",
            MergeKind::SharedPhone => "shared_phone",
            MergeKind::Manual => "manual",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            MergeKind::SharedEmail,
            MergeKind::SharedPhone,
            MergeKind::Manual,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One merge of a person into another, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeView {
    /// The merge's id.
    pub id: Uuid,
    /// The person kept.
    pub kept_id: Uuid,
    /// The person merged into it.
    pub merged_id: Uuid,
    /// The rule that fired.
    pub rule: MergeKind,
    /// The normalised address or number both carried; absent for a manual merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// The kept person's source records that carried it (or that a person chose).
    pub kept_sources: Vec<RecordRef>,
    /// The merged person's.
    pub merged_sources: Vec<RecordRef>,
    /// Who merged by hand; absent for an automatic merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When.
    pub merged_at: DateTime<Utc>,
}

/// What a person decided about two source records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Never merge them (an unmerge, a rejected suggestion).
    Apart,
    /// Keep them one person (a manual merge, an accepted suggestion).
    Together,
}

impl Verdict {
    /// Reads the stored spelling (`apart`, `together`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "apart" => Some(Verdict::Apart),
            "together" => Some(Verdict::Together),
            _ => None,
        }
    }
}

/// A decision about two source records, as `person_decision` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionView {
    /// The first record, in key order.
    pub a: RecordRef,
    /// The second.
    pub b: RecordRef,
    /// What was decided.
    pub verdict: Verdict,
    /// Who decided.
    pub actor: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// What kind of identifier two people share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// A normalised e-mail address.
    Email,
    /// A phone number in E.164.
    Phone,
}

impl IdentifierKind {
    /// Reads the stored spelling (`email`, `phone`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(IdentifierKind::Email),
            "phone" => Some(IdentifierKind::Phone),
            _ => None,
        }
    }
}

/// One side of a suggestion: the record that carries the identifier, and its person now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestedSide {
    /// The person the record belongs to now: the id to accept or reject with.
    pub person_id: Uuid,
    /// The record.
    pub record: RecordRef,
    /// The name it gives.
    pub name: String,
}

/// Two people who share an identifier only they carry, with names that do not match: maybe
/// one person, maybe two. Accepting merges them; rejecting keeps them apart; both are
/// remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestionView {
    /// One of them.
    pub a: SuggestedSide,
    /// The other.
    pub b: SuggestedSide,
    /// What they share.
    pub kind: IdentifierKind,
    /// The address or number.
    pub identifier: String,
    /// 0 to 1: how alike their names are.
    pub score: f32,
    /// When the ETL found the pair.
    pub created_at: DateTime<Utc>,
}

/// A page: at most `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Rows per page, 1 to 500 (50 when absent).
    #[serde(default = "default_page")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: u32,
    /// Rows to skip.
    #[serde(default)]
    pub offset: u32,
}

fn default_page() -> u32 {
    DEFAULT_PAGE
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            offset: 0,
        }
    }
}

impl Page {
    /// Refuses a `limit` outside 1 to [`MAX_PAGE`], naming it.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(ApiError::bad_request(format!(
                "`limit` must be between 1 and {MAX_PAGE}, not {}",
                self.limit
            )));
        }
        Ok(())
    }
}

/// `etl.people.suggestions`: the pairs left for a person to decide, a page of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ListSuggestions {
    /// The page.
    pub page: Page,
}

/// The answer to `etl.people.suggestions`: best score first, pairs whose two records are one
/// person by now left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuggestionPage {
    /// This page.
    pub suggestions: Vec<SuggestionView>,
    /// How many there are across all pages.
    pub total: u64,
    /// The page size asked for.
    pub limit: u32,
    /// The rows skipped.
    pub offset: u32,
}

/// `etl.people.shared`: the identifiers that no longer merge anyone, a page of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ListShared {
    /// The page.
    pub page: Page,
}

/// An identifier carried by three or more people whose names do not all match (a front desk
/// number, `info@`): it merges nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedIdentifierView {
    /// An address or a number.
    pub kind: IdentifierKind,
    /// The address or number.
    pub identifier: String,
    /// How many source records of people carry it.
    pub carriers: u32,
    /// Their names.
    pub names: Vec<String>,
    /// When the ETL last counted them.
    pub updated_at: DateTime<Utc>,
}

/// The answer to `etl.people.shared`: most carriers first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SharedPage {
    /// This page.
    pub shared: Vec<SharedIdentifierView>,
    /// How many there are across all pages.
    pub total: u64,
    /// The page size asked for.
    pub limit: u32,
    /// The rows skipped.
    pub offset: u32,
}

/// A message of a person, as `etl.people.show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkedMessage {
    /// The message's id.
    pub id: Uuid,
    /// Its subject line, for e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Who sent it.
    pub sender: String,
    /// Who it went to.
    pub recipients: Vec<String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// The plugin instance it came from.
    pub source: String,
}

/// A calendar event of a person, as `etl.people.show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkedEvent {
    /// The event's id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// Who organises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<String>,
    /// Who attends.
    pub attendees: Vec<String>,
    /// The plugin instance it came from.
    pub source: String,
}

/// The NATS user that asks for a change about people: the last token of its subject, which
/// deploy/nats-server.conf lets only that user publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Caller {
    /// The operator: the `tributary` CLI.
    Admin,
    /// The plugin manager, for its admin HTTP API.
    PluginManager,
}

impl Caller {
    /// The NATS user, and the subject's last token (`plugin-manager`).
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::Admin => "admin",
            Caller::PluginManager => "plugin-manager",
        }
    }

    /// The caller a subject's last token names.
    pub fn parse(token: &str) -> Option<Self> {
        [Caller::Admin, Caller::PluginManager]
            .into_iter()
            .find(|c| c.as_str() == token)
    }
}

/// Who is recorded as having made a change asked by `caller` on behalf of `on_behalf_of`:
/// `nats:admin` for the CLI; for the plugin manager, the admin token's name it forwards, or
/// `nats:plugin-manager`. A subject that names no caller, a forwarded name from anyone but the
/// plugin manager, and a name that is empty, too long or holds a control character are
/// refused, naming the problem.
pub fn change_actor(
    caller: Option<Caller>,
    on_behalf_of: Option<&str>,
) -> Result<String, ApiError> {
    let Some(caller) = caller else {
        return Err(ApiError::bad_request(
            "the subject's last token names no caller: `admin` or `plugin-manager`",
        ));
    };
    match (caller, on_behalf_of) {
        (Caller::Admin, None) => Ok("nats:admin".to_owned()),
        (Caller::PluginManager, None) => Ok("nats:plugin-manager".to_owned()),
        (Caller::Admin, Some(_)) => Err(ApiError::bad_request(
            "`on_behalf_of` is the plugin manager's alone: the CLI's changes are recorded as nats:admin",
        )),
        (Caller::PluginManager, Some(name)) => {
            if name.trim().is_empty()
                || name.chars().count() > MAX_ACTOR_CHARS
                || name.chars().any(char::is_control)
            {
                return Err(ApiError::bad_request(format!(
                    "`on_behalf_of` must be 1 to {MAX_ACTOR_CHARS} characters without control characters"
                )));
            }
            Ok(name.to_owned())
        }
    }
}

/// A change about people (`etl.people.<verb>.<caller>`): who asks, and on whose behalf.
pub trait PeopleChange {
    /// The NATS user asking (the subject's last token).
    fn caller(&self) -> Option<Caller>;
    /// The name the plugin manager forwards.
    fn on_behalf_of(&self) -> Option<&str>;
    /// Who the change is recorded as made by ([`change_actor`]).
    fn actor(&self) -> Result<String, ApiError> {
        change_actor(self.caller(), self.on_behalf_of())
    }
}

/// `etl.people.unmerge.<caller>`: split a person back into the people her sources describe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmergePerson {
    /// The NATS user asking (the subject's last token, not in the body). `None` when the
    /// token names no caller; such a request is refused.
    #[serde(skip)]
    pub caller: Option<Caller>,
    /// For the plugin manager only: the admin token's name (`admin-api:<fingerprint>`) it
    /// established for the HTTP request it forwards. Refused from any other caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// The person to split.
    pub id: Uuid,
    /// Only the records of this plugin instance split off (together); without it, every
    /// source record becomes its own person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `etl.people.merge.<caller>`: two people are one (they may share nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergePeople {
    /// The NATS user asking ([`UnmergePerson::caller`]).
    #[serde(skip)]
    pub caller: Option<Caller>,
    /// For the plugin manager only ([`UnmergePerson::on_behalf_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// One of them.
    pub a: Uuid,
    /// The other.
    pub b: Uuid,
}

/// `etl.people.decide.<caller>`: accept a suggestion (merge the two) or reject it (keep them
/// apart for good).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideSuggestion {
    /// The NATS user asking ([`UnmergePerson::caller`]).
    #[serde(skip)]
    pub caller: Option<Caller>,
    /// For the plugin manager only ([`UnmergePerson::on_behalf_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// One person of the suggestion (its `a.person_id`).
    pub a: Uuid,
    /// The other (its `b.person_id`).
    pub b: Uuid,
    /// `true` merges them, `false` keeps them apart.
    pub accept: bool,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionOutcome {
    /// The people the records it named belong to afterwards, smallest id first.
    pub people: Vec<Uuid>,
    /// The events it announced.
    pub events: usize,
}

/// The refusals of a change about people.
const CHANGE: &[ErrorCode] = &[BadRequest, NotFound, Conflict, Internal];

/// Implements [`super::Request`] and [`PeopleChange`] for a change whose subject ends in
/// its caller.
macro_rules! people_changes {
    ($($request:ty => $verb:literal;)+) => {
        $(
            impl super::Request for $request {
                const SERVICE: ServiceName = ServiceName::Etl;
                const VERB: &'static str = $verb;
                const WILDCARD: bool = true;
                const TOKEN_NAME: &'static str = "caller";
                const ERRORS: &'static [ErrorCode] = CHANGE;
                type Reply = DecisionOutcome;

                fn subject_token(&self) -> Option<&str> {
                    self.caller.map(Caller::as_str)
                }

                fn set_subject_token(&mut self, token: &str) {
                    self.caller = Caller::parse(token);
                }
            }

            impl PeopleChange for $request {
                fn caller(&self) -> Option<Caller> {
                    self.caller
                }

                fn on_behalf_of(&self) -> Option<&str> {
                    self.on_behalf_of.as_deref()
                }
            }
        )+
    };
}

people_changes! {
    UnmergePerson => "people.unmerge";
    MergePeople => "people.merge";
    DecideSuggestion => "people.decide";
}

mod reads {
    use super::*;
    super::super::requests! {
        ServiceName::Etl;
        ShowPerson => "people.show", PersonShown, &[BadRequest, NotFound, Internal];
        ListSuggestions => "people.suggestions", SuggestionPage, &[BadRequest, Internal];
        ListShared => "people.shared", SharedPage, &[BadRequest, Internal];
    }
}

/// Every `etl.*` request, for the catalog.
pub(crate) fn catalog() -> Vec<super::CatalogEntry> {
    let mut all = reads::catalog();
    all.push(super::CatalogEntry::of::<UnmergePerson>());
    all.push(super::CatalogEntry::of::<MergePeople>());
    all.push(super::CatalogEntry::of::<DecideSuggestion>());
    all
}

#[cfg(test)]
mod tests {
    use super::super::Request;
    use super::*;
    use crate::subjects::Subjects;

    #[test]
    fn a_change_goes_to_its_callers_subject_and_records_who_asked() {
        let mut change = MergePeople {
            caller: Some(Caller::PluginManager),
            on_behalf_of: None,
            a: Uuid::nil(),
            b: Uuid::max(),
        };
        assert_eq!(
            change.subject(&Subjects::default()),
            "etl.people.merge.plugin-manager"
        );
        assert_eq!(change.actor().unwrap_or_default(), "nats:plugin-manager");
        change.on_behalf_of = Some("admin-api:1a2b3c4d".into());
        assert_eq!(change.actor().unwrap_or_default(), "admin-api:1a2b3c4d");
        let body = serde_json::to_value(&change).unwrap_or_default();
        assert_eq!(
            body.get("caller"),
            None,
            "the caller is the subject's, not the body's"
        );
    }

    #[test]
    fn only_the_plugin_manager_speaks_for_someone_and_an_unknown_caller_is_refused() {
        let mut claimed = UnmergePerson {
            caller: Some(Caller::Admin),
            on_behalf_of: None,
            id: Uuid::nil(),
            source: None,
        };
        assert_eq!(claimed.actor().unwrap_or_default(), "nats:admin");
        claimed.on_behalf_of = Some("admin-api:forged".into());
        let refused = claimed.actor().unwrap_err();
        assert!(refused.message.contains("on_behalf_of"), "{refused}");
        let mut unknown = claimed.clone();
        unknown.on_behalf_of = None;
        unknown.set_subject_token("search");
        assert_eq!(unknown.actor().unwrap_err().error, BadRequest);
        let mut bad = claimed;
        bad.caller = Some(Caller::PluginManager);
        for name in ["", "a\nb", &"x".repeat(MAX_ACTOR_CHARS + 1)] {
            bad.on_behalf_of = Some(name.to_owned());
            assert_eq!(bad.actor().unwrap_err().error, BadRequest, "{name:?}");
        }
    }

    #[test]
    fn a_misspelt_field_of_a_change_is_refused_not_ignored() {
        let misspelt = serde_json::from_value::<UnmergePerson>(serde_json::json!({
            "id": Uuid::nil(), "sources": "crm"
        }));
        assert!(
            misspelt.is_err(),
            "an unmerge of every source instead of one"
        );
    }

    #[test]
    fn a_merged_id_answers_with_where_she_lives_on() {
        let shown = PersonShown::Merged {
            id: Uuid::nil(),
            merged_into: Uuid::max(),
        };
        assert_eq!(
            serde_json::to_value(shown).unwrap_or_default(),
            serde_json::json!({
                "status": "merged",
                "id": Uuid::nil(),
                "merged_into": Uuid::max(),
            })
        );
    }

    #[test]
    fn a_page_defaults_to_50_and_refuses_a_limit_out_of_range() {
        let page: ListSuggestions = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(page.page, Page::default());
        assert_eq!(page.page.limit, DEFAULT_PAGE);
        let page: ListShared =
            serde_json::from_str(r#"{"limit": 5, "offset": 10}"#).unwrap_or_default();
        assert_eq!(
            page.page,
            Page {
                limit: 5,
                offset: 10
            }
        );
        assert!(serde_json::from_str::<ListShared>(r#"{"limits": 5}"#).is_err());
        for limit in [0, MAX_PAGE + 1] {
            let refused = Page { limit, offset: 0 }.validate().unwrap_err();
            assert!(refused.message.contains("`limit`"), "{refused}");
        }
    }
}
