//! The console's pages over the unified model: search with type, source and date filters
//! (`search.query`, what the search service's `GET /search` answers), and a person's page
//! with her sources, the merges that built her and their evidence, her messages and events,
//! and an Unmerge form (`etl.people.*`, what the admin API's `/api/v1/people/…` routes ask).

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;
use tributary_proto::model::EntityType;
use tributary_proto::requests::etl::{MergeKind, PersonShown};
use tributary_proto::requests::search::{snippet_parts, SearchQuery};
use tributary_proto::requests::ErrorCode;
use uuid::Uuid;

use super::auth::SignedIn;
use super::pages::{not_found, Flash};
use super::ConsoleState;
use crate::mesh::MeshError;

/// The search form's fields that [`SearchQuery::from_params`] reads; a field left empty is
/// not a filter.
const SEARCH_FIELDS: [&str; 6] = ["q", "type", "source", "from", "to", "offset"];

/// The link to a person's page.
pub(crate) fn person_path(id: Uuid) -> String {
    format!("/people/{id}")
}

/// `GET /search`: the form and, once asked (a `q`, even empty, finds everything), a page of
/// hits with their matched words marked, a person's linked to her page.
pub(crate) async fn search(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let asked = params.contains_key("q");
    let filled: HashMap<String, String> = params
        .iter()
        .filter(|(name, value)| SEARCH_FIELDS.contains(&name.as_str()) && !value.trim().is_empty())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let form = |name: &str| params.get(name).cloned().unwrap_or_default();
    let types: Vec<&str> = EntityType::ALL.iter().map(|t| t.as_str()).collect();
    let mut status = StatusCode::OK;
    let (results, error) = if !asked {
        (None, None)
    } else {
        match SearchQuery::from_params(&filled)
            .map_err(|e| e.to_string())
            .and_then(|q| {
                q.validate().map_err(|e| e.to_string())?;
                Ok(q)
            }) {
            Err(problem) => {
                status = StatusCode::BAD_REQUEST;
                (None, Some(problem))
            }
            Ok(query) => match state.mesh.search(&query).await {
                Ok(found) => (Some(results_context(&found, &filled)), None),
                Err(e) => {
                    status = unavailable(&e);
                    (None, Some(e.to_string()))
                }
            },
        }
    };
    let page = state.render(
        "search.html",
        context! {
            title => "Search", nav => "search", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            q => form("q"), type_ => form("type"), source => form("source"),
            from => form("from"), to => form("to"), types => types,
            results => results, error => error,
        },
    );
    (status, page).into_response()
}

/// A refusal is the asker's fault (400); a service that does not answer is 503.
fn unavailable(e: &MeshError) -> StatusCode {
    match e {
        MeshError::Refused(e) if e.error == ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        MeshError::Refused(e) if e.error == ErrorCode::NotFound => StatusCode::NOT_FOUND,
        MeshError::Refused(e) if e.error == ErrorCode::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The hits as the template shows them, and the links to the pages before and after.
fn results_context(
    found: &tributary_proto::requests::search::SearchResults,
    asked: &HashMap<String, String>,
) -> minijinja::Value {
    let hits: Vec<_> = found
        .hits
        .iter()
        .map(|hit| {
            context! {
                entity_type => hit.entity_type.as_str(),
                title => if hit.title.is_empty() { "(untitled)".to_owned() } else { hit.title.clone() },
                href => (hit.entity_type == EntityType::Person).then(|| person_path(hit.id)),
                snippet => snippet_parts(&hit.snippet),
                date => hit.date.format("%Y-%m-%d %H:%M").to_string(),
                sources => hit.sources,
                id => hit.id,
            }
        })
        .collect();
    let link = |offset: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let mut names: Vec<&String> = asked.keys().filter(|n| *n != "offset").collect();
        names.sort();
        for name in names {
            query.append_pair(name, &asked[name]);
        }
        if !asked.contains_key("q") {
            query.append_pair("q", "");
        }
        query.append_pair("offset", &offset.to_string());
        format!("/search?{}", query.finish())
    };
    let last = found.offset + found.hits.len();
    context! {
        hits => hits, total => found.total, first => found.offset + 1, last => last,
        backend => found.backend,
        previous => (found.offset > 0).then(|| link(found.offset.saturating_sub(found.limit))),
        next => (last < found.total).then(|| link(last)),
    }
}

/// `GET /people/{id}`: a person and why she is who she is; an id merged into another goes to
/// that person's page, saying so.
pub(crate) async fn person(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&state, format!("`{id}` is not a person's id."));
    };
    let detail = match state.mesh.person(id).await {
        Ok(PersonShown::Found(detail)) => detail,
        Ok(PersonShown::Merged { id, merged_into }) => {
            let flash = Flash::done(format!("{id} was merged into this person."));
            return signed_in.then(flash, &person_path(merged_into)).await;
        }
        Err(MeshError::Refused(e)) if e.error == ErrorCode::NotFound => {
            return not_found(&state, e.message)
        }
        Err(e) => {
            let page = state.render(
                "message.html",
                context! { title => "The ETL does not answer", message => e.to_string() },
            );
            return (unavailable(&e), page).into_response();
        }
    };
    let instances: BTreeSet<&str> = detail
        .sources
        .iter()
        .filter(|s| !s.deleted)
        .map(|s| s.instance_id.as_str())
        .collect();
    let merges: Vec<_> = detail
        .merges
        .iter()
        .map(|m| {
            let why = match (m.rule, m.identifier.as_deref()) {
                (MergeKind::SharedEmail, Some(address)) => format!("shared e-mail {address}"),
                (MergeKind::SharedPhone, Some(number)) => format!("shared phone {number}"),
                (MergeKind::Manual, _) => {
                    format!("merged by {}", m.actor.as_deref().unwrap_or("a person"))
                }
                (rule, None) => rule.as_str().to_owned(),
            };
            context! {
                why => why, at => m.merged_at.format("%Y-%m-%d %H:%M").to_string(),
                kept => m.kept_sources, merged => m.merged_sources,
            }
        })
        .collect();
    let name = detail.person.fields.display_name.clone();
    state.render(
        "person.html",
        context! {
            title => name, nav => "search", csrf => signed_in.csrf,
            flash => signed_in.take_flash().await,
            path => person_path(detail.person.id),
            person => detail.person, sources => detail.sources, merges => merges,
            decisions => detail.decisions, suggestions => detail.suggestions,
            messages => detail.messages, events => detail.events,
            instances => instances, can_split => live_records(&detail.sources) > 1,
        },
    )
}

fn live_records(sources: &[tributary_proto::requests::etl::PersonSource]) -> usize {
    sources.iter().filter(|s| !s.deleted).count()
}

/// The Unmerge form's field.
#[derive(Deserialize)]
pub(crate) struct UnmergeForm {
    /// The instance whose records split off together; empty splits every record apart.
    #[serde(default)]
    source: String,
}

/// `POST /people/{id}/unmerge`: `POST /api/v1/people/{id}/unmerge`, as the console's actor.
pub(crate) async fn unmerge(
    State(state): State<ConsoleState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<UnmergeForm>,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return not_found(&state, format!("`{id}` is not a person's id."));
    };
    let source = Some(form.source.trim().to_owned()).filter(|s| !s.is_empty());
    let flash = match state
        .mesh
        .unmerge_person(id, source, state.actor.name())
        .await
    {
        Ok(outcome) => Flash::done(format!(
            "Split into {} people: {}.",
            outcome.people.len(),
            outcome
                .people
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => Flash::refused(e.into_api_error()),
    };
    signed_in.then(flash, &person_path(id)).await
}
