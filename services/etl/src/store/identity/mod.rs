//! Identity resolution: people who share a normalised e-mail address or phone number are one
//! person. Pure: no I/O.

pub mod names;
pub mod resolve;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use tributary_proto::model::PersonFields;
use uuid::Uuid;

use crate::normalise::contact::dedup_in_order as contact_dedup;

/// Groups of people that turn out to be one: each group's ids, smallest first.
#[derive(Debug, Default)]
pub struct PeopleGroups {
    parent: HashMap<Uuid, Uuid>,
}

impl PeopleGroups {
    fn find(&mut self, id: Uuid) -> Uuid {
        let parent = *self.parent.entry(id).or_insert(id);
        if parent == id {
            return id;
        }
        let root = self.find(parent);
        self.parent.insert(id, root);
        root
    }

    /// Records that `a` and `b` are the same person.
    pub fn join(&mut self, a: Uuid, b: Uuid) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra.max(rb), ra.min(rb));
        }
    }

    /// Every group of more than one person.
    pub fn groups(mut self) -> Vec<BTreeSet<Uuid>> {
        let ids: Vec<Uuid> = self.parent.keys().copied().collect();
        let mut by_root: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        for id in ids {
            let root = self.find(id);
            by_root.entry(root).or_default().insert(id);
        }
        by_root.into_values().filter(|g| g.len() > 1).collect()
    }
}

/// Joins people who share an address: `people` are (id, e-mail addresses and phone numbers).
pub fn group_by_shared_address<'a>(
    people: impl IntoIterator<Item = (Uuid, Vec<&'a str>)>,
) -> Vec<BTreeSet<Uuid>> {
    let mut groups = PeopleGroups::default();
    let mut first_with: HashMap<&'a str, Uuid> = HashMap::new();
    for (id, addresses) in people {
        groups.find(id);
        for address in addresses {
            match first_with.get(address) {
                Some(other) => groups.join(*other, id),
                None => {
                    first_with.insert(address, id);
                }
            }
        }
    }
    groups.groups()
}

/// Which person of a group is kept: the oldest one already stored (UUIDv7 ids sort by
/// creation), else the oldest of the new ones.
pub fn kept_of(group: &BTreeSet<Uuid>, stored: impl Fn(&Uuid) -> bool) -> Option<Uuid> {
    group
        .iter()
        .find(|id| stored(id))
        .or_else(|| group.iter().next())
        .copied()
}

/// One source's view of a person.
#[derive(Debug, Clone)]
pub struct SourceView {
    /// Its version.
    pub version: DateTime<Utc>,
    /// What it says.
    pub fields: PersonFields,
}

/// The person several sources describe: names and other single values from the most recent
/// source that has them, every e-mail address and phone number of all of them, `extra` keys
/// from newer sources over older ones.
pub fn merge_sources(mut views: Vec<SourceView>) -> Option<PersonFields> {
    views.sort_by_key(|v| std::cmp::Reverse(v.version));
    let mut views = views.into_iter();
    let mut merged = views.next()?.fields;
    for older in views {
        let f = older.fields;
        if merged.display_name.is_empty() {
            merged.display_name = f.display_name;
        }
        merged.given_name = merged.given_name.or(f.given_name);
        merged.family_name = merged.family_name.or(f.family_name);
        merged.organization = merged.organization.or(f.organization);
        merged.title = merged.title.or(f.title);
        merged.emails.extend(f.emails);
        merged.phones.extend(f.phones);
        for (k, v) in f.extra {
            merged.extra.entry(k).or_insert(v);
        }
    }
    merged.emails = contact_dedup(std::mem::take(&mut merged.emails));
    merged.phones = contact_dedup(std::mem::take(&mut merged.phones));
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn people_sharing_an_address_form_one_group_transitively() {
        let groups = group_by_shared_address(vec![
            (id(3), vec!["a@x.org"]),
            (id(1), vec!["+14155550132"]),
            (id(2), vec!["a@x.org", "+14155550132"]),
            (id(4), vec!["z@x.org"]),
        ]);
        assert_eq!(groups, vec![BTreeSet::from([id(1), id(2), id(3)])]);
        assert_eq!(
            kept_of(&groups[0], |i| *i == id(2) || *i == id(3)),
            Some(id(2))
        );
        assert_eq!(kept_of(&groups[0], |_| false), Some(id(1)));
    }

    #[test]
    fn the_newest_source_names_the_person_and_addresses_are_pooled() {
        let old = SourceView {
            version: "2026-01-01T00:00:00Z".parse().unwrap(),
            fields: PersonFields {
                display_name: "Ada".into(),
                title: Some("Countess".into()),
                emails: vec!["ada@x.org".into()],
                ..Default::default()
            },
        };
        let new = SourceView {
            version: "2026-02-01T00:00:00Z".parse().unwrap(),
            fields: PersonFields {
                display_name: "Ada Lovelace".into(),
                emails: vec!["ada@y.org".into(), "ada@x.org".into()],
                phones: vec!["+442079460958".into()],
                ..Default::default()
            },
        };
        let merged = merge_sources(vec![old, new]).unwrap();
        assert_eq!(merged.display_name, "Ada Lovelace");
        assert_eq!(merged.title.as_deref(), Some("Countess"));
        assert_eq!(merged.emails, vec!["ada@y.org", "ada@x.org"]);
        assert_eq!(merged.phones, vec!["+442079460958"]);
        assert!(merge_sources(vec![]).is_none());
    }
}
