//! Who is one person, decided from the person records alone, so that the order items arrive
//! in never changes the outcome. Pure: no I/O.
//!
//! The records of a region (every record that shares an identifier with what a batch
//! changed, and every record of their people) are joined in a fixed order:
//! 1. the pairs a person put together (a manual merge, an accepted suggestion);
//! 2. for each identifier, in order (kind, then value), its carriers, each joined to the
//!    earliest other carrier it may join. An identifier whose carriers' names do not all
//!    match ("contested": a front desk number, `info@`) joins nobody; two groups of records
//!    join only when every name of one is compatible with every name of the other and no
//!    pair of them was decided apart.
//!
//! Two people left apart who share an identifier only they carry become a suggestion; an
//! identifier contested among three or more people is reported as shared.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::names::{self, NameVerdict};

/// A source record's key: the instance it came from and its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RecordKey {
    /// The plugin instance.
    pub instance_id: String,
    /// The record's id in that instance.
    pub external_id: String,
}

impl RecordKey {
    /// The key of `external_id` in `instance_id`.
    pub fn new(instance_id: impl Into<String>, external_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            external_id: external_id.into(),
        }
    }
}

/// Which kind of identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentifierKind {
    /// A normalised e-mail address.
    Email,
    /// A phone number in E.164.
    Phone,
}

impl IdentifierKind {
    /// As stored (`email`, `phone`).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
        }
    }

    /// The merge rule that fires on this kind (`shared_email`).
    pub fn rule(self) -> &'static str {
        match self {
            IdentifierKind::Email => "shared_email",
            IdentifierKind::Phone => "shared_phone",
        }
    }
}

/// One live person record of the region.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its key.
    pub key: RecordKey,
    /// Its name ([`names::name_of`]).
    pub name: Option<String>,
    /// Its normalised e-mail addresses.
    pub emails: Vec<String>,
    /// Its phone numbers.
    pub phones: Vec<String>,
}

/// What a person decided about two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Never one person.
    Apart,
    /// One person, whatever their names.
    Together,
}

/// A decision about two records.
#[derive(Debug, Clone)]
pub struct Decision {
    /// One record.
    pub a: RecordKey,
    /// The other.
    pub b: RecordKey,
    /// What was decided.
    pub verdict: Verdict,
}

/// Why two groups of records were joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A person said so.
    Decided,
    /// Both carry this identifier.
    Shared(IdentifierKind, String),
}

/// A join: record `a` (joined to) and record `b`, as indices into the region's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The earlier record.
    pub a: usize,
    /// The record joined to it.
    pub b: usize,
    /// Why.
    pub reason: Reason,
}

/// Two records of different people who might be one.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// The first record (smaller key).
    pub a: usize,
    /// The second.
    pub b: usize,
    /// What they share.
    pub kind: IdentifierKind,
    /// Its value.
    pub identifier: String,
    /// How alike their names are, 0 to 1.
    pub score: f32,
}

/// An identifier contested among three or more people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// Which kind.
    pub kind: IdentifierKind,
    /// Its value.
    pub identifier: String,
    /// How many records carry it.
    pub carriers: usize,
    /// Their names, sorted, without repeats.
    pub names: Vec<String>,
}

/// Who is one person among a region's records.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// The groups of records that are one person each, as indices, in key order; the groups
    /// in the order of their first record.
    pub groups: Vec<Vec<usize>>,
    /// The joins that made them, in the order made.
    pub links: Vec<Link>,
    /// Pairs for a person to decide.
    pub suggestions: Vec<Suggestion>,
    /// Identifiers that merge nobody because too many people carry them.
    pub shared: Vec<Shared>,
    /// Every identifier the region's records carry, contested or not.
    pub identifiers: Vec<(IdentifierKind, String)>,
}

struct Groups {
    parent: Vec<usize>,
    members: Vec<Vec<usize>>,
}

impl Groups {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            members: (0..n).map(|i| vec![i]).collect(),
        }
    }

    fn find(&mut self, i: usize) -> usize {
        let mut root = i;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        let mut at = i;
        while self.parent[at] != root {
            let next = self.parent[at];
            self.parent[at] = root;
            at = next;
        }
        root
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (keep, gone) = (ra.min(rb), ra.max(rb));
        self.parent[gone] = keep;
        let moved = std::mem::take(&mut self.members[gone]);
        self.members[keep].extend(moved);
    }
}

/// Resolves `records` (the region, any order) under `decisions`.
pub fn resolve(records: &[Record], decisions: &[Decision]) -> Resolution {
    // Everything below walks records in key order, so the outcome depends on what the records
    // say, never on the order they are given in.
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| records[a].key.cmp(&records[b].key));
    let mut rank = vec![0; records.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let index: BTreeMap<&RecordKey, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.key, i))
        .collect();
    let pair = |a: usize, b: usize| if rank[a] < rank[b] { (a, b) } else { (b, a) };

    let mut apart: HashSet<(usize, usize)> = HashSet::new();
    let mut together: Vec<(usize, usize)> = Vec::new();
    for d in decisions {
        let (Some(&a), Some(&b)) = (index.get(&d.a), index.get(&d.b)) else {
            continue;
        };
        match d.verdict {
            Verdict::Apart => {
                apart.insert(pair(a, b));
            }
            Verdict::Together => together.push(pair(a, b)),
        }
    }
    together.sort_by_key(|&(a, b)| (rank[a], rank[b]));

    let mut carriers: BTreeMap<(IdentifierKind, &str), Vec<usize>> = BTreeMap::new();
    for &i in &order {
        let r = &records[i];
        let ids = r
            .emails
            .iter()
            .map(|e| (IdentifierKind::Email, e.as_str()))
            .chain(r.phones.iter().map(|p| (IdentifierKind::Phone, p.as_str())));
        for id in ids {
            let list = carriers.entry(id).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let compatible =
        |a: usize, b: usize| compare(records, a, b).compatible() && !apart.contains(&pair(a, b));

    let mut groups = Groups::new(records.len());
    let mut links = Vec::new();
    for &(a, b) in &together {
        if groups.find(a) != groups.find(b) {
            groups.join(a, b);
            links.push(Link {
                a,
                b,
                reason: Reason::Decided,
            });
        }
    }
    let mut contested = HashSet::new();
    for (&(kind, id), list) in &carriers {
        let disputed = list.iter().enumerate().any(|(n, &a)| {
            list[n + 1..]
                .iter()
                .any(|&b| !compare(records, a, b).compatible())
        });
        if disputed {
            contested.insert((kind, id));
            continue;
        }
        for (n, &b) in list.iter().enumerate().skip(1) {
            for &a in &list[..n] {
                let (ga, gb) = (groups.find(a), groups.find(b));
                if ga == gb {
                    break;
                }
                let may_join = groups.members[ga]
                    .iter()
                    .all(|&x| groups.members[gb].iter().all(|&y| compatible(x, y)));
                if may_join {
                    groups.join(a, b);
                    links.push(Link {
                        a,
                        b,
                        reason: Reason::Shared(kind, id.to_owned()),
                    });
                    break;
                }
            }
        }
    }

    let mut suggestions = Vec::new();
    let mut shared = Vec::new();
    for (&(kind, id), list) in &carriers {
        // The first carrier of each group, in key order.
        let mut firsts: Vec<usize> = Vec::new();
        let mut seen = HashSet::new();
        for &i in list {
            if seen.insert(groups.find(i)) {
                firsts.push(i);
            }
        }
        match firsts.len() {
            0 | 1 => {}
            2 => {
                let (a, b) = pair(firsts[0], firsts[1]);
                let (ga, gb) = (groups.find(a), groups.find(b));
                let decided_apart = groups.members[ga].iter().any(|&x| {
                    groups.members[gb]
                        .iter()
                        .any(|&y| apart.contains(&pair(x, y)))
                });
                if !decided_apart {
                    suggestions.push(Suggestion {
                        a,
                        b,
                        kind,
                        identifier: id.to_owned(),
                        score: names::likeness(
                            records[a].name.as_deref(),
                            records[b].name.as_deref(),
                        ),
                    });
                }
            }
            _ if contested.contains(&(kind, id)) => {
                let mut names: Vec<String> = list
                    .iter()
                    .filter_map(|&i| records[i].name.clone())
                    .collect();
                names.sort();
                names.dedup();
                shared.push(Shared {
                    kind,
                    identifier: id.to_owned(),
                    carriers: list.len(),
                    names,
                });
            }
            _ => {}
        }
    }

    let mut by_group: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &order {
        let g = groups.find(i);
        by_group.entry(g).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_group.into_values().collect();
    groups.sort_by_key(|g| rank[g[0]]);
    Resolution {
        groups,
        links,
        suggestions,
        shared,
        identifiers: carriers
            .keys()
            .map(|&(kind, id)| (kind, id.to_owned()))
            .collect(),
    }
}

fn compare(records: &[Record], a: usize, b: usize) -> NameVerdict {
    names::compare(records[a].name.as_deref(), records[b].name.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(external_id: &str, name: &str, ids: &[&str]) -> Record {
        Record {
            key: RecordKey::new("src", external_id),
            name: (!name.is_empty()).then(|| name.to_owned()),
            emails: ids
                .iter()
                .filter(|i| i.contains('@'))
                .map(|s| s.to_string())
                .collect(),
            phones: ids
                .iter()
                .filter(|i| !i.contains('@'))
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The groups as sets of external ids, for comparing outcomes across orders.
    fn people(records: &[Record], decisions: &[Decision]) -> Vec<Vec<String>> {
        let r = resolve(records, decisions);
        let mut people: Vec<Vec<String>> = r
            .groups
            .iter()
            .map(|g| {
                let mut ids: Vec<String> = g
                    .iter()
                    .map(|&i| records[i].key.external_id.clone())
                    .collect();
                ids.sort();
                ids
            })
            .collect();
        people.sort();
        people
    }

    #[test]
    fn compatible_names_sharing_an_address_are_one_person() {
        let records = [
            record("a", "Ada", &["ada@x.org"]),
            record("b", "Ada Lovelace", &["ada@x.org", "+442079460958"]),
            record("c", "", &["+442079460958"]),
        ];
        assert_eq!(people(&records, &[]), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn a_front_desk_number_on_five_people_merges_none_and_is_shared() {
        let names = [
            "Mary Jones",
            "Li Wei",
            "Omar Haddad",
            "Ana Souza",
            "Tom Brown",
        ];
        let records: Vec<Record> = names
            .iter()
            .enumerate()
            .map(|(n, name)| record(&format!("p{n}"), name, &["+14155550100"]))
            .collect();
        let r = resolve(&records, &[]);
        assert_eq!(r.groups.len(), 5);
        assert!(r.suggestions.is_empty(), "{:?}", r.suggestions);
        assert_eq!(r.shared.len(), 1);
        assert_eq!(r.shared[0].carriers, 5);
        assert_eq!(r.shared[0].identifier, "+14155550100");
    }

    #[test]
    fn a_contested_identifier_joins_even_compatible_carriers_never() {
        let records = [
            record("a", "John Smith", &["info@x.org"]),
            record("b", "J. Smith", &["info@x.org"]),
            record("c", "Mary Jones", &["info@x.org"]),
        ];
        assert_eq!(people(&records, &[]).len(), 3);
    }

    #[test]
    fn two_strangers_sharing_a_mailbox_become_a_suggestion() {
        let records = [
            record("a", "Alice Smith", &["smiths@x.org", "alice@x.org"]),
            record("b", "Bob Smith", &["smiths@x.org"]),
        ];
        let r = resolve(&records, &[]);
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.suggestions.len(), 1);
        assert_eq!(r.suggestions[0].identifier, "smiths@x.org");
        assert!(r.shared.is_empty());
        let rejected = [Decision {
            a: records[0].key.clone(),
            b: records[1].key.clone(),
            verdict: Verdict::Apart,
        }];
        assert!(resolve(&records, &rejected).suggestions.is_empty());
        let accepted = [Decision {
            verdict: Verdict::Together,
            ..rejected[0].clone()
        }];
        assert_eq!(people(&records, &accepted), vec![vec!["a", "b"]]);
    }

    #[test]
    fn a_nameless_record_does_not_join_two_strangers() {
        // Ada and Bob each share something with a record that has no name.
        let records = [
            record("a", "Ada Lovelace", &["ada@x.org"]),
            record("n", "", &["ada@x.org", "+14155550132"]),
            record("b", "Bob Smith", &["+14155550132"]),
        ];
        let outcome = people(&records, &[]);
        assert_eq!(outcome.len(), 2, "{outcome:?}");
    }

    #[test]
    fn records_decided_apart_stay_apart() {
        let records = [
            record("a", "Ada", &["ada@x.org"]),
            record("b", "Ada Lovelace", &["ada@x.org"]),
        ];
        let apart = [Decision {
            a: records[1].key.clone(),
            b: records[0].key.clone(),
            verdict: Verdict::Apart,
        }];
        assert_eq!(people(&records, &apart).len(), 2);
        assert!(resolve(&records, &apart).suggestions.is_empty());
    }

    #[test]
    fn the_same_records_in_every_order_give_the_same_people() {
        let records = vec![
            record("a", "John Smith", &["john@x.org", "+14155550100"]),
            record("b", "J. Smith", &["john@x.org"]),
            record("c", "Mary Jones", &["+14155550100", "mary@x.org"]),
            record("d", "", &["mary@x.org", "+14155550199"]),
            record("e", "Mary", &["+14155550199"]),
            record("f", "Tom Brown", &["+14155550100"]),
        ];
        let expected = people(&records, &[]);
        let mut permutation: Vec<usize> = (0..records.len()).collect();
        // Heap's algorithm: every order of the six records.
        let mut c = vec![0; records.len()];
        let mut i = 0;
        let mut orders = 1;
        while i < records.len() {
            if c[i] < i {
                if i % 2 == 0 {
                    permutation.swap(0, i);
                } else {
                    permutation.swap(c[i], i);
                }
                let shuffled: Vec<Record> =
                    permutation.iter().map(|&k| records[k].clone()).collect();
                assert_eq!(people(&shuffled, &[]), expected, "order {permutation:?}");
                orders += 1;
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        assert_eq!(orders, 720);
        assert_eq!(
            expected,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["c".into(), "d".into(), "e".into()],
                vec!["f".into()],
            ]
        );
    }
}
