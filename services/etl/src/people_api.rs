//! The ETL's answers to the `etl.people.*` requests ([`tributary_proto::requests::etl`]):
//! the reads ([`crate::people_reads`]) and the decisions a person makes, applied by
//! [`BatchWriter::decide`] and recorded as made by the NATS user the subject names (or, for the
//! plugin manager's admin HTTP API, the admin token's name it forwards).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tributary_kit::{KitError, ServiceRuntime};
use tributary_proto::requests::etl::{
    DecideSuggestion, DecisionOutcome, ListShared, ListSuggestions, MergePeople, PeopleChange,
    PersonShown, SharedPage, ShowPerson, SuggestionPage, UnmergePerson,
};
use tributary_proto::requests::{ApiError, ErrorCode};

use crate::people_reads;
use crate::store::{BatchWriter, DecisionError, PeopleDecision};

/// How often a decision that met a concurrent batch (or a database away for a moment) is tried
/// before it is answered as failed.
const DECIDE_ATTEMPTS: u32 = 3;

/// What the responders share: the database, the writer that applies decisions, and the
/// outbox publisher to wake once a decision's events are written.
struct People {
    pool: PgPool,
    writer: BatchWriter,
    wake: Arc<Notify>,
}

/// Adds the `etl.people.*` endpoints to the ETL's micro service.
pub async fn serve(
    runtime: &ServiceRuntime,
    pool: PgPool,
    wake: Arc<Notify>,
) -> Result<(), KitError> {
    let people = Arc::new(People {
        writer: BatchWriter::new(pool.clone(), runtime.subjects.clone()),
        pool,
        wake,
    });
    let p = people.clone();
    tributary_kit::requests::serve::<ShowPerson, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move { p.show(asked).await }
    })
    .await?;
    let p = people.clone();
    tributary_kit::requests::serve::<ListSuggestions, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move { p.suggestions(asked).await }
    })
    .await?;
    let p = people.clone();
    tributary_kit::requests::serve::<ListShared, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move { p.shared(asked).await }
    })
    .await?;
    let p = people.clone();
    tributary_kit::requests::serve::<UnmergePerson, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move {
            let decision = PeopleDecision::Unmerge {
                person: asked.id,
                instance: asked.source.clone(),
            };
            p.decide(&asked, decision).await
        }
    })
    .await?;
    let p = people.clone();
    tributary_kit::requests::serve::<MergePeople, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move {
            let decision = PeopleDecision::Merge {
                a: asked.a,
                b: asked.b,
            };
            p.decide(&asked, decision).await
        }
    })
    .await?;
    let p = people;
    tributary_kit::requests::serve::<DecideSuggestion, _, _>(runtime, move |asked| {
        let p = p.clone();
        async move {
            let decision = if asked.accept {
                PeopleDecision::Merge {
                    a: asked.a,
                    b: asked.b,
                }
            } else {
                PeopleDecision::KeepApart {
                    a: asked.a,
                    b: asked.b,
                }
            };
            p.decide(&asked, decision).await
        }
    })
    .await?;
    Ok(())
}

impl People {
    async fn show(&self, asked: ShowPerson) -> Result<PersonShown, ApiError> {
        people_reads::show(&self.pool, asked.id)
            .await
            .map_err(|e| failed("etl.people.show", e))?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotFound,
                    format!("no person has the id {}", asked.id),
                )
            })
    }

    async fn suggestions(&self, asked: ListSuggestions) -> Result<SuggestionPage, ApiError> {
        asked.page.validate()?;
        people_reads::suggestions(&self.pool, asked.page)
            .await
            .map_err(|e| failed("etl.people.suggestions", e))
    }

    async fn shared(&self, asked: ListShared) -> Result<SharedPage, ApiError> {
        asked.page.validate()?;
        people_reads::shared(&self.pool, asked.page)
            .await
            .map_err(|e| failed("etl.people.shared", e))
    }

    /// Applies `decision`, asked by `change`'s caller, trying a transient failure again.
    async fn decide(
        &self,
        change: &impl PeopleChange,
        decision: PeopleDecision,
    ) -> Result<DecisionOutcome, ApiError> {
        let actor = change.actor()?;
        if let PeopleDecision::Unmerge {
            instance: Some(instance),
            ..
        } = &decision
        {
            if instance.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "`source` is empty: name the instance whose records split off, or leave it out",
                ));
            }
        }
        let mut attempt = 1;
        loop {
            match self.writer.decide(&decision, &actor).await {
                Ok(report) => {
                    if report.events > 0 {
                        self.wake.notify_one();
                    }
                    tracing::info!(?decision, %actor, people = ?report.people, events = report.events, "People decided.");
                    return Ok(DecisionOutcome {
                        people: report.people,
                        events: report.events,
                    });
                }
                Err(e) if e.is_transient() && attempt < DECIDE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "A decision about people failed; trying again.");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => return Err(refused(e)),
            }
        }
    }
}

/// A decision that cannot be applied, as the contract's error: an id no person has is
/// `not_found`; a person merged into another, deleted, with one record, or the same as the
/// other is `conflict`; a `source` she has no record from (or all of hers) is `bad_request`;
/// the database's failure is `internal`, its cause logged.
pub fn refused(e: DecisionError) -> ApiError {
    let code = match &e {
        DecisionError::UnknownPerson(_) => ErrorCode::NotFound,
        DecisionError::MergedInto { .. }
        | DecisionError::Deleted(_)
        | DecisionError::NothingToSplit(_)
        | DecisionError::SamePerson(..) => ErrorCode::Conflict,
        DecisionError::NoSuchSource { .. } => ErrorCode::BadRequest,
        DecisionError::Store(store) => {
            let transient = store.is_transient();
            tracing::warn!(error = %store, transient, "A decision about people failed.");
            return ApiError::new(
                ErrorCode::Internal,
                if transient {
                    "the ETL's database is busy or away: try again; its log has the cause"
                } else {
                    "the ETL could not apply the decision; its log has the cause"
                },
            );
        }
    };
    ApiError::new(code, e.to_string())
}

/// A read that failed, as an `internal` error; the cause goes to the log.
fn failed(request: &str, e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, request, "A read about people failed.");
    ApiError::new(
        ErrorCode::Internal,
        format!("{request} failed: the ETL's database did not answer; its log has the cause"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn each_refusal_of_a_decision_has_its_code_and_says_what_is_wrong() {
        let id = Uuid::nil();
        let into = Uuid::max();
        for (e, code) in [
            (DecisionError::UnknownPerson(id), ErrorCode::NotFound),
            (
                DecisionError::MergedInto { person: id, into },
                ErrorCode::Conflict,
            ),
            (DecisionError::Deleted(id), ErrorCode::Conflict),
            (DecisionError::NothingToSplit(id), ErrorCode::Conflict),
            (DecisionError::SamePerson(id, into), ErrorCode::Conflict),
            (
                DecisionError::NoSuchSource {
                    person: id,
                    problem: "has no record from instance `crm`".into(),
                },
                ErrorCode::BadRequest,
            ),
        ] {
            let message = e.to_string();
            let refused = refused(e);
            assert_eq!(refused.error, code, "{message}");
            assert_eq!(refused.message, message);
        }
        let merged = refused(DecisionError::MergedInto { person: id, into });
        assert!(merged.message.contains(&into.to_string()), "{merged}");
    }
}
