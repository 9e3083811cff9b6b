//! Templates and expressions: one sandboxed minijinja environment for both.
//!
//! minijinja has no file system, network or process access; a template sees only the
//! context it is given (`config`, `state`, `partition`, `base_url`, and where documented
//! `body`, `headers`, `status`, `record`). Undefined names and attributes are *chainable*
//! (`record.a.b` of a record without `a` is undefined, not an error), so optional fields in an
//! API's answers need no guards; a template renders them as empty text.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use minijinja::value::ValueKind;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::Value as Json;
use tributary_plugin_sdk::PluginError;

use crate::json_object::{JsonNode, Scope};

/// The roots a name in a template or expression may start with, by where it is used.
pub(crate) mod roots {
    /// Request templates: URL, query, headers, body, auth.
    pub const REQUEST: &[&str] = &["config", "state", "partition", "base_url"];
    /// Expressions over an answer: records, pagination, delta links, expiry.
    pub const RESPONSE: &[&str] = &[
        "config",
        "state",
        "partition",
        "base_url",
        "body",
        "headers",
        "status",
    ];
    /// Expressions over one record: mapping, cursor fields, parent values.
    pub const RECORD: &[&str] = &["config", "state", "partition", "base_url", "record"];
    /// A partition list from config.
    pub const CONFIG: &[&str] = &["config", "base_url"];
}

/// Fuel per evaluation: bounds the work of one template or expression (a loop over a huge
/// list), so a spec cannot make the host spin.
const FUEL: u64 = 1_000_000;

/// The one environment every spec is evaluated in.
pub(crate) fn environment() -> Arc<Environment<'static>> {
    ENV.clone()
}

static ENV: LazyLock<Arc<Environment<'static>>> = LazyLock::new(|| Arc::new(new_environment()));

/// [`environment`], borrowed for ever, so that a sync keeps the expressions it compiled in it
/// ([`Compiled`]).
fn static_environment() -> &'static Environment<'static> {
    &ENV
}

/// A fresh environment with the engine's settings (validation borrows a spec's text in one).
pub(crate) fn new_environment<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env.add_function("days_from_today", days_from_today);
    env
}

/// `days_from_today(n)`: midnight UTC `n` days from today (negative: before), in RFC 3339,
/// for APIs that list a window of time (Graph's `calendarView` wants `startDateTime` and
/// `endDateTime`). The same all day, so a listing resumed later that day asks the same.
fn days_from_today(days: i64) -> Result<String, minijinja::Error> {
    let out_of_range = || {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("days_from_today({days}) is out of the range of dates"),
        )
    };
    let day = chrono::Duration::try_days(days)
        .and_then(|shift| chrono::Utc::now().date_naive().checked_add_signed(shift))
        .ok_or_else(out_of_range)?;
    Ok(format!("{}T00:00:00Z", day.format("%Y-%m-%d")))
}

/// Renders template `source` (named by `what` in errors) with `ctx`.
pub(crate) fn render(
    env: &Environment<'static>,
    what: &str,
    source: &str,
    ctx: &Value,
) -> Result<String, PluginError> {
    env.render_str(source, ctx)
        .map_err(|e| PluginError::Other(format!("{what}: {}", detail(&e))))
}

/// Why `source` cannot be compiled as an expression before minijinja is asked: a `}}` outside
/// a string ends a `{{ … }}` block that an expression does not have, and minijinja 2.24's
/// lexer panics on it ("empty lexer stack", found by fuzzing) rather than refusing it.
pub(crate) fn unbalanced_close(source: &str) -> Option<String> {
    let mut quote = None;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '}') if chars.peek() == Some(&'}') => {
                return Some(
                    "`}}` outside a string: an expression is not wrapped in `{{ … }}`; \
                     close nested braces with a space (`} }`)"
                        .to_owned(),
                )
            }
            (None, _) => {}
        }
    }
    None
}

/// A compiled expression, named for its errors.
pub(crate) struct Expr<'env> {
    what: String,
    /// What it was compiled from, so that [`Compiled`] hands it out only for that source.
    source: String,
    expr: minijinja::Expression<'env, 'static>,
    /// For a plain path (`record.properties.email`, `body.results`): its root and the keys
    /// under it, looked up in the JSON directly. Most of a spec's expressions are such paths,
    /// and this spares turning a whole record or page into template values and back.
    path: Option<(String, Vec<String>)>,
}

/// A template context made on first use: a record's or an answer's expressions that are all
/// plain paths never need one.
pub(crate) struct LazyContext<'a> {
    value: OnceCell<Value>,
    make: &'a dyn Fn() -> Value,
}

impl<'a> LazyContext<'a> {
    /// A context `make` makes when an expression first needs it.
    pub fn new(make: &'a dyn Fn() -> Value) -> Self {
        LazyContext {
            value: OnceCell::new(),
            make,
        }
    }

    /// The context, made now if it was not yet.
    pub fn get(&self) -> &Value {
        self.value.get_or_init(self.make)
    }
}

/// A sync's compiled expressions, each under the place in the spec that names it
/// (`streams.contacts.map.fields.emails`): compiled on the first page that needs it, not
/// again for every page.
#[derive(Default)]
pub(crate) struct Compiled {
    exprs: Mutex<HashMap<String, Arc<Expr<'static>>>>,
}

impl Compiled {
    /// The expression `source` at `what`, compiled now if it was not yet; a source that does
    /// not compile is refused each time it is asked for, with the same error.
    pub fn get(&self, what: String, source: &str) -> Result<Arc<Expr<'static>>, PluginError> {
        let mut exprs = self.exprs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(expr) = exprs.get(&what).filter(|expr| expr.source == source) {
            return Ok(expr.clone());
        }
        let expr = Arc::new(Expr::compile(static_environment(), what.clone(), source)?);
        exprs.insert(what, expr.clone());
        Ok(expr)
    }
}

/// The context of a page's records but the record itself (`config`, `partition`,
/// `base_url`), converted once for the page; each record joins it as a [`JsonNode`], so only
/// the keys an expression reads are converted.
pub(crate) struct RecordContext {
    base: Vec<(&'static str, Value)>,
}

impl RecordContext {
    /// A context of `entries`, each a JSON value under its name, for records to join.
    pub fn new(entries: &[(&'static str, &Json)]) -> Self {
        RecordContext {
            base: entries
                .iter()
                .map(|(name, value)| (*name, Value::from_serialize(value)))
                .collect(),
        }
    }

    /// The context of `record`: what [`context`] makes of the entries and `record`.
    pub fn with(&self, record: &Arc<Json>) -> Value {
        Scope::value(
            self.base
                .iter()
                .cloned()
                .chain([("record", JsonNode::value(record.clone()))]),
        )
    }
}

/// `source` as a plain path (`root.key.key…`, identifiers only), if it is one.
fn plain_path(source: &str) -> Option<(String, Vec<String>)> {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut parts = source.trim().split('.');
    let root = parts.next().filter(|root| identifier(root))?;
    let keys: Vec<String> = parts.map(str::to_owned).collect();
    (!keys.is_empty() && keys.iter().all(|k| identifier(k))).then(|| (root.to_owned(), keys))
}

/// Whether minijinja takes `value` as true: what `is_true` says of the same JSON.
fn json_truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

fn json_string(value: Json) -> Option<String> {
    match value {
        Json::String(s) if !s.is_empty() => Some(s),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl<'env> Expr<'env> {
    /// Compiles `source`; `what` names it (`streams.contacts.map.id`).
    pub fn compile(
        env: &'env Environment<'static>,
        what: impl Into<String>,
        source: &str,
    ) -> Result<Self, PluginError> {
        let what = what.into();
        if let Some(problem) = unbalanced_close(source) {
            return Err(PluginError::Other(format!("{what}: {problem}")));
        }
        let expr = env
            .compile_expression_owned(source.to_owned())
            .map_err(|e| PluginError::Other(format!("{what}: {}", detail(&e))))?;
        let path = plain_path(source);
        Ok(Expr {
            what,
            source: source.to_owned(),
            expr,
            path,
        })
    }

    /// A plain path's value in `value`, the JSON its root names (`null` where a key is
    /// missing, as minijinja's chainable undefined gives); `None` when the expression is not
    /// a plain path from `root`.
    fn lookup(&self, root: &str, value: &Json) -> Option<Json> {
        self.lookup_ref(root, value).cloned()
    }

    /// The keys of a plain path from `root`; `None` when it is not one.
    fn keys_from(&self, root: &str) -> Option<&[String]> {
        let (from, keys) = self.path.as_ref()?;
        (from == root).then_some(keys.as_slice())
    }

    /// [`Expr::lookup`], by reference.
    pub fn lookup_ref<'v>(&self, root: &str, value: &'v Json) -> Option<&'v Json> {
        static NULL: Json = Json::Null;
        let mut at = value;
        for key in self.keys_from(root)? {
            match at.get(key.as_str()) {
                Some(next) => at = next,
                None => return Some(&NULL),
            }
        }
        Some(at)
    }

    /// [`Expr::lookup`], taking the value out of `value` (leaving `null`) rather than
    /// copying it.
    pub fn take(&self, root: &str, value: &mut Json) -> Option<Json> {
        let mut at = value;
        for key in self.keys_from(root)? {
            match at.get_mut(key.as_str()) {
                Some(next) => at = next,
                None => return Some(Json::Null),
            }
        }
        Some(at.take())
    }

    /// [`Expr::json`], looked up in `value` (the root `root` names) when it is a plain path
    /// from it, else evaluated in `ctx`.
    pub fn json_in(
        &self,
        root: &str,
        value: &Json,
        ctx: &LazyContext,
    ) -> Result<Json, PluginError> {
        match self.lookup(root, value) {
            Some(found) => Ok(found),
            None => self.json(ctx.get()),
        }
    }

    /// [`Expr::string`], as [`Expr::json_in`] finds it.
    pub fn string_in(
        &self,
        root: &str,
        value: &Json,
        ctx: &LazyContext,
    ) -> Result<Option<String>, PluginError> {
        match self.lookup(root, value) {
            Some(found) => Ok(json_string(found)),
            None => self.string(ctx.get()),
        }
    }

    /// [`Expr::truthy`], as [`Expr::json_in`] finds it.
    pub fn truthy_in(
        &self,
        root: &str,
        value: &Json,
        ctx: &LazyContext,
    ) -> Result<bool, PluginError> {
        match self.lookup(root, value) {
            Some(found) => Ok(json_truthy(&found)),
            None => self.truthy(ctx.get()),
        }
    }

    /// Its value in `ctx`, as minijinja gives it.
    pub fn eval(&self, ctx: &Value) -> Result<Value, PluginError> {
        self.expr
            .eval(ctx)
            .map_err(|e| PluginError::Other(format!("{}: {}", self.what, detail(&e))))
    }

    /// Its value in `ctx` as JSON; undefined and none are `null`.
    pub fn json(&self, ctx: &Value) -> Result<Json, PluginError> {
        let value = self.eval(ctx)?;
        if value.is_undefined() || value.is_none() {
            return Ok(Json::Null);
        }
        to_json(&value).map_err(|e| PluginError::Other(format!("{}: {e}", self.what)))
    }

    /// Whether it is a plain path from `root`, looked up rather than evaluated.
    pub fn is_path_from(&self, root: &str) -> bool {
        self.keys_from(root).is_some()
    }

    /// For a list expression: each item's value as [`Expr::json`] gives it; `None` when it
    /// fails or an item cannot be written as JSON (the caller then evaluates each alone).
    pub fn json_list(&self, ctx: &Value) -> Option<Vec<Json>> {
        let list = self.expr.eval(ctx).ok()?;
        list.downcast_object_ref::<Vec<Value>>()?
            .iter()
            .map(|item| {
                if item.is_undefined() || item.is_none() {
                    Some(Json::Null)
                } else {
                    to_json(item).ok()
                }
            })
            .collect()
    }

    /// Its value as a non-empty string (a number is written out), or `None`.
    pub fn string(&self, ctx: &Value) -> Result<Option<String>, PluginError> {
        Ok(json_string(self.json(ctx)?))
    }

    /// Whether it is true in `ctx`.
    pub fn truthy(&self, ctx: &Value) -> Result<bool, PluginError> {
        Ok(self.eval(ctx)?.is_true())
    }
}

/// `value` as JSON, as `serde_json::to_value` makes it, but built directly where JSON holds
/// the value as it is (none, booleans, strings, lists, maps with string keys); anything else
/// (numbers, bytes, other keys, plain objects) goes through serde as before.
fn to_json(value: &Value) -> Result<Json, serde_json::Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(Json::Null),
        ValueKind::Bool => Ok(Json::Bool(value.is_true())),
        ValueKind::String => match value.as_str() {
            Some(text) => Ok(Json::String(text.to_owned())),
            None => serde_json::to_value(value),
        },
        ValueKind::Seq | ValueKind::Iterable => {
            // The lists expressions build are `Vec`s: read without a boxed iterator.
            if let Some(list) = value.downcast_object_ref::<Vec<Value>>() {
                return list
                    .iter()
                    .map(to_json)
                    .collect::<Result<_, _>>()
                    .map(Json::Array);
            }
            let Some(object) = value.as_object() else {
                return serde_json::to_value(value);
            };
            let mut items = Vec::with_capacity(object.enumerator_len().unwrap_or(0));
            for item in object.try_iter().into_iter().flatten() {
                items.push(to_json(&item)?);
            }
            Ok(Json::Array(items))
        }
        ValueKind::Map => {
            let Some(object) = value.as_object() else {
                return serde_json::to_value(value);
            };
            let mut map = serde_json::Map::new();
            for (key, item) in object.try_iter_pairs().into_iter().flatten() {
                match (key.kind(), key.as_str()) {
                    (ValueKind::String, Some(key)) => {
                        map.insert(key.to_owned(), to_json(&item)?);
                    }
                    // serde_json writes some other keys as strings and refuses the rest.
                    _ => return serde_json::to_value(value),
                }
            }
            Ok(Json::Object(map))
        }
        _ => serde_json::to_value(value),
    }
}

/// A minijinja error with its detail, on one line.
pub(crate) fn detail(error: &minijinja::Error) -> String {
    let mut text = error.kind().to_string();
    if let Some(detail) = error.detail() {
        text = format!("{text}: {detail}");
    }
    if let Some(line) = error.line() {
        text = format!("{text} (line {line})");
    }
    text
}

/// A context holding `entries`, each a JSON value under its name.
pub(crate) fn context(entries: &[(&str, &Json)]) -> Value {
    Value::from_iter(
        entries
            .iter()
            .map(|(name, value)| ((*name).to_owned(), Value::from_serialize(value))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_from_today_is_midnight_utc_that_many_days_away() {
        let env = environment();
        let expr = Expr::compile(&env, "x", "days_from_today(-365)").unwrap();
        let value = expr.string(&context(&[])).unwrap().unwrap();
        let expected = chrono::Utc::now().date_naive() - chrono::Duration::days(365);
        assert_eq!(value, format!("{expected}T00:00:00Z"));
        let far = Expr::compile(&env, "x", "days_from_today(9999999999)").unwrap();
        let Err(PluginError::Other(message)) = far.json(&context(&[])) else {
            panic!("a date past chrono's range must be refused");
        };
        assert!(message.contains("out of the range of dates"), "{message}");
    }

    #[test]
    fn results_become_the_json_serde_makes_of_them() {
        let env = environment();
        let ctx = context(&[(
            "record",
            &serde_json::json!({"a": [1, {"b": 2.5}], "s": "x"}),
        )]);
        for source in [
            "none",
            "true",
            "'text'",
            "'<b>' | escape",
            "[1, -2, 3.0, 18446744073709551615, 'x', none, [true]]",
            "{'a': record.a, 'missing': record.nothing, 'n': {'m': []} }",
            "{1: 'one', 'two': 2}",
            "{none: 1}",
            "record",
            "record.a | reverse",
            "range(3)",
            "record.s | list",
            "record.a[1] | items",
            "[record.nothing]",
            "'abc' | list",
            "{true: 1}",
        ] {
            let value = Expr::compile(&env, "x", source)
                .unwrap()
                .eval(&ctx)
                .unwrap();
            let direct = to_json(&value).map_err(|e| e.to_string());
            let through_serde = serde_json::to_value(&value).map_err(|e| e.to_string());
            assert_eq!(direct, through_serde, "{source}");
        }
    }

    #[test]
    fn a_closing_double_brace_outside_a_string_is_refused_before_minijinja_panics_on_it() {
        let env = environment();
        for source in ["dy}}tT", "}}", "record.a }}", "{'a': {'b': 1}}"] {
            let Err(PluginError::Other(message)) =
                Expr::compile(&env, "streams.x.records.path", source)
            else {
                panic!("{source:?} must be refused");
            };
            assert!(
                message.starts_with("streams.x.records.path: `}}` outside a string"),
                "{message}"
            );
        }
        for source in [
            "'}}'",
            "\"a}}b\"",
            "'it\\'s }}'",
            "{'a': {'b': 1} }",
            "record.id",
        ] {
            assert!(
                Expr::compile(&env, "x", source).is_ok(),
                "{source:?} is a valid expression"
            );
        }
    }
}
