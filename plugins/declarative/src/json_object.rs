//! JSON as template values converted as an expression reads them, not all at once.
//!
//! A record's mapping reads a handful of its keys, but `Value::from_serialize` converts the
//! whole record (every key, every string) before the first expression runs, and did so for
//! each record. [`JsonNode`] is a minijinja object over the record's JSON: a key read is
//! converted when it is read, an object or list under it becomes another node over the same
//! JSON. It behaves as the converted value would (a map or a list, the same keys in the same
//! order, the same lengths, truthiness, rendering and `Debug` text), since minijinja treats
//! every map and list through the same `Object` interface.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use minijinja::value::{Enumerator, Object, ObjectExt, ObjectRepr, Value};
use serde_json::Value as Json;

/// One step from a node to a child: a key of an object or an index of a list.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A [`Step`], borrowed.
#[derive(Clone, Copy)]
enum StepRef<'a> {
    Key(&'a str),
    Index(usize),
}

impl Step {
    fn is(&self, other: StepRef) -> bool {
        match (self, other) {
            (Step::Key(a), StepRef::Key(b)) => a == b,
            (Step::Index(a), StepRef::Index(b)) => *a == b,
            _ => false,
        }
    }
}

impl StepRef<'_> {
    fn to_owned(self) -> Step {
        match self {
            StepRef::Key(key) => Step::Key(key.to_owned()),
            StepRef::Index(index) => Step::Index(index),
        }
    }
}

/// A JSON object or list inside `root`, at `path`, as a minijinja map or list.
pub(crate) struct JsonNode {
    /// The whole JSON (a record), shared by every node made from it.
    root: Arc<Json>,
    /// Where this node is in `root`; every step was a child that existed when it was made.
    path: Vec<Step>,
    /// The objects and lists under it made so far: a record's expressions read
    /// `record.properties.…` many times, and each gets the same node.
    children: Mutex<Vec<(Step, Value)>>,
}

impl JsonNode {
    /// `json` as a template value: a node over it where it is an object or a list, else the
    /// value `Value::from_serialize` makes of it.
    pub fn value(json: Arc<Json>) -> Value {
        match &*json {
            Json::Object(_) | Json::Array(_) => Value::from_object(JsonNode {
                root: json,
                path: Vec::new(),
                children: Mutex::default(),
            }),
            leaf => leaf_value(leaf),
        }
    }

    /// The JSON this node stands for.
    fn json(&self) -> &Json {
        let mut at = &*self.root;
        for step in &self.path {
            let next = match step {
                Step::Key(key) => at.get(key.as_str()),
                Step::Index(index) => at.get(*index),
            };
            // Never missing: a node is only made for a child that is there, in JSON that is
            // never changed.
            at = next.unwrap_or(&Json::Null);
        }
        at
    }

    /// The template value of `child`, found at `step` under this node: a node of its own
    /// for an object or a list (made once), else the scalar converted.
    fn child(&self, step: StepRef, child: &Json) -> Value {
        match child {
            Json::Object(_) | Json::Array(_) => {
                let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, made)) = children.iter().find(|(made, _)| made.is(step)) {
                    return made.clone();
                }
                let mut path = Vec::with_capacity(self.path.len() + 1);
                path.extend(self.path.iter().cloned());
                path.push(step.to_owned());
                let node = Value::from_object(JsonNode {
                    root: self.root.clone(),
                    path,
                    children: Mutex::default(),
                });
                children.push((step.to_owned(), node.clone()));
                node
            }
            leaf => leaf_value(leaf),
        }
    }

    fn len(&self) -> usize {
        match self.json() {
            Json::Object(map) => map.len(),
            Json::Array(list) => list.len(),
            _ => 0,
        }
    }
}

/// The value `Value::from_serialize` makes of a JSON scalar (serde_json writes a positive
/// integer as a `u64`, a negative one as an `i64`, any other number as an `f64`).
fn leaf_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::from(u),
            (None, Some(i), _) => Value::from(i),
            (None, None, Some(f)) => Value::from(f),
            (None, None, None) => Value::from_serialize(n),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Object(_) | Json::Array(_) => Value::from_serialize(json),
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.json() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.json() {
            Json::Object(map) => {
                let key = key.as_str()?;
                map.get(key)
                    .map(|child| self.child(StepRef::Key(key), child))
            }
            Json::Array(list) => {
                let index = key.as_usize()?;
                list.get(index)
                    .map(|child| self.child(StepRef::Index(index), child))
            }
            _ => None,
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.json() {
            Json::Object(map) => map
                .get(key)
                .map(|child| self.child(StepRef::Key(key), child)),
            // A list's items are found by index, as `Vec`'s are: never by a name.
            _ => self.get_value(&Value::from(key)),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.json() {
            // In key order, forwards and backwards, as a converted `BTreeMap` enumerates.
            Json::Object(_) => self.mapped_rev_key_value_enumerator(|this| {
                let pairs = this.json().as_object().into_iter().flatten();
                Box::new(pairs.map(|(key, child)| {
                    (
                        Value::from(key.as_str()),
                        this.child(StepRef::Key(key), child),
                    )
                }))
            }),
            Json::Array(list) => Enumerator::Seq(list.len()),
            _ => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.len())
    }
}

/// As the converted map or list prints itself (`debug()` in a template shows it).
impl fmt::Debug for JsonNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.json() {
            Json::Object(map) => f
                .debug_map()
                .entries(map.iter().map(|(key, child)| {
                    (
                        Value::from(key.as_str()),
                        self.child(StepRef::Key(key), child),
                    )
                }))
                .finish(),
            Json::Array(list) => f
                .debug_list()
                .entries(
                    list.iter()
                        .enumerate()
                        .map(|(i, child)| self.child(StepRef::Index(i), child)),
                )
                .finish(),
            leaf => fmt::Debug::fmt(&leaf_value(leaf), f),
        }
    }
}

/// The names of a context and their values, as a minijinja map: what
/// `Value::from_iter(names and values)` makes, without building a `BTreeMap` each time.
pub(crate) struct Scope {
    /// In name order, as the `BTreeMap` would have them.
    entries: Vec<(&'static str, Value)>,
}

impl Scope {
    /// A context of `entries`; a name given twice keeps its last value, as a map does.
    pub fn value(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
        let mut sorted: Vec<(&'static str, Value)> = Vec::new();
        for (name, value) in entries {
            match sorted.binary_search_by(|(n, _)| n.cmp(&name)) {
                Ok(at) => sorted[at].1 = value,
                Err(at) => sorted.insert(at, (name, value)),
            }
        }
        Value::from_object(Scope { entries: sorted })
    }
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.entries
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        self.mapped_rev_key_value_enumerator(|this| {
            Box::new(
                this.entries
                    .iter()
                    .map(|(name, value)| (Value::from(*name), value.clone())),
            )
        })
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.entries.len())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(name, value)| (Value::from(*name), value)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// Expressions that read, iterate, measure, compare, print and serialise JSON: each gives
    /// the same over a node as over the converted value.
    #[test]
    fn a_node_behaves_as_the_converted_json() {
        let record = json!({
            "id": "7", "n": 3, "neg": -4, "big": 18446744073709551615u64, "f": 2.0, "t": true,
            "none": null, "empty": "", "list": [1, "two", {"three": [3]}, null], "nil": [],
            "props": {"b": "B", "a": "A", "c": {"d": "D"}}, "blank": {}
        });
        let env = crate::expr::new_environment();
        let node = Scope::value([
            ("record", JsonNode::value(Arc::new(record.clone()))),
            ("x", Value::from(1)),
        ]);
        let converted = Value::from_iter([
            ("record".to_owned(), Value::from_serialize(&record)),
            ("x".to_owned(), Value::from(1)),
        ]);
        for source in [
            "record",
            "record.id ~ record.n",
            "record.props.c.d",
            "record['props']['a']",
            "record.list[2].three[0]",
            "record.list[-1]",
            "record.list[-4]",
            "record.list[9]",
            "record.props.zz.yy",
            "record.list | length",
            "record.props | length",
            "record.props | list",
            "record.props | items | list",
            "record.props | dictsort",
            "record.props | reverse | list",
            "record.list | reverse | list",
            "record.list | select | list",
            "record.list | first",
            "record.list | last",
            "record.list[1:3]",
            "record.list + [5]",
            "[0] + record.list",
            "record.props | tojson",
            "record.list | tojson",
            "record.props | string",
            "record.list | string",
            "record.props ~ ''",
            "record | length",
            "record.nil or 'none'",
            "record.blank or 'empty'",
            "record.props is mapping",
            "record.list is sequence",
            "record.props == {'a': 'A', 'b': 'B', 'c': {'d': 'D'}}",
            "record.list == [1, 'two', {'three': [3]}, none]",
            "record.props.c in [{'d': 'D'}]",
            "'a' in record.props",
            "'two' in record.list",
            "record.big",
            "record.f ~ ''",
            "record.neg * 2",
            "record.none is none",
            "record.empty is string",
            "record.props | map('upper') | list",
            "record.list | map(attribute='three') | list",
            "record.props | unique | list",
            "{'r': record.props}",
            "x",
            "record.props.items",
        ] {
            let expr = env.compile_expression(source).unwrap();
            let (over_node, over_converted) = (expr.eval(&node), expr.eval(&converted));
            match (over_node, over_converted) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{source}");
                    assert_eq!(a.to_string(), b.to_string(), "{source}");
                    assert_eq!(format!("{a:?}"), format!("{b:?}"), "{source}");
                    assert_eq!(a.kind(), b.kind(), "{source}");
                    assert_eq!(a.is_true(), b.is_true(), "{source}");
                    assert_eq!(
                        serde_json::to_value(&a).unwrap(),
                        serde_json::to_value(&b).unwrap(),
                        "{source}"
                    );
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{source}"),
                (a, b) => panic!("{source}: {a:?} against {b:?}"),
            }
        }
    }

    #[test]
    fn a_scope_prints_and_enumerates_as_the_map_it_stands_for() {
        let scope = Scope::value([
            ("record", Value::from(1)),
            ("config", Value::from("c")),
            ("base_url", Value::from(())),
        ]);
        let map = Value::from_iter([
            ("record".to_owned(), Value::from(1)),
            ("config".to_owned(), Value::from("c")),
            ("base_url".to_owned(), Value::from(())),
        ]);
        assert_eq!(format!("{scope:?}"), format!("{map:?}"));
        assert_eq!(scope.to_string(), map.to_string());
        assert_eq!(scope, map);
    }
}
