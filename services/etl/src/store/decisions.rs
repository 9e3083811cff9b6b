//! What a person decides about people: split a merged person apart, merge two, or keep two
//! apart. Each decision is remembered by the source records it names, and applied in one
//! transaction with the re-resolution it causes, so its events are written to the outbox like
//! a batch's.

use uuid::Uuid;

use super::StoreError;

/// A decision about people, as the admin API and `tributary people` take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeopleDecision {
    /// Split `person` back into the people its sources describe: every source record its own
    /// person, or, with `instance`, only the records of that plugin instance split off
    /// (together). Remembered: later syncs never merge them again unless a person says so.
    Unmerge {
        /// The person to split.
        person: Uuid,
        /// Only this instance's records split off.
        instance: Option<String>,
    },
    /// Merge two people who share nothing (or whose names do not match): a person says they
    /// are one. Remembered: later syncs keep them together.
    Merge {
        /// One of them.
        a: Uuid,
        /// The other.
        b: Uuid,
    },
    /// Keep two people apart (a rejected suggestion): later syncs never merge them.
    KeepApart {
        /// One of them.
        a: Uuid,
        /// The other.
        b: Uuid,
    },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionReport {
    /// The people the decision's records belong to afterwards, smallest id first.
    pub people: Vec<Uuid>,
    /// Events written to the outbox.
    pub events: usize,
}

/// A decision that cannot be applied, named.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// No person has this id.
    #[error("no person has the id {0}")]
    UnknownPerson(Uuid),
    /// The person was merged into another; decide about that one.
    #[error("person {person} was merged into {into}: use that id")]
    MergedInto {
        /// The id asked about.
        person: Uuid,
        /// The person it lives on in.
        into: Uuid,
    },
    /// The person was deleted: every source removed her.
    #[error("person {0} was deleted")]
    Deleted(Uuid),
    /// The person has one source record: there is nothing to split.
    #[error("person {0} comes from one source record: there is nothing to split")]
    NothingToSplit(Uuid),
    /// `--source` names an instance the person has no record from, or all of them.
    #[error("person {person} {problem}")]
    NoSuchSource {
        /// The person.
        person: Uuid,
        /// What is wrong (`has no record from instance \`crm\``).
        problem: String,
    },
    /// Both ids are the same person.
    #[error("{0} and {1} are the same person")]
    SamePerson(Uuid, Uuid),
    /// The database refused or could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DecisionError {
    /// Whether trying again unchanged can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecisionError::Store(e) if e.is_transient())
    }
}

impl super::BatchWriter {
    /// Applies `decision`, made by `actor` (the admin token's name, `cli`), in one
    /// transaction: the decision is remembered, the people it names are resolved again, and
    /// the events of what changed are written to the outbox.
    pub async fn decide(
        &self,
        decision: &PeopleDecision,
        actor: &str,
    ) -> Result<DecisionReport, DecisionError> {
        let _ = (decision, actor);
        Err(DecisionError::Store(StoreError::Encode(
            "people decisions are being built".into(),
        )))
    }
}
