//! The README's configuration table, held against the real keys: every key of
//! `config/default.toml` has a row, every key a row names is a real one, and the default a row
//! gives is the built-in default.

use std::collections::BTreeMap;

use tributary_kit::config::DEFAULTS;

fn readme() -> String {
    std::fs::read_to_string(format!("{}/../../README.md", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every key of the built-in defaults (`nats.url`), with its default as the table writes
/// it: the value, `empty` for an empty string, `[]` for an empty list.
fn default_keys() -> BTreeMap<String, String> {
    fn walk(
        prefix: &str,
        table: config::Map<String, config::Value>,
        out: &mut BTreeMap<String, String>,
    ) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            let shown = match value.kind {
                config::ValueKind::Table(inner) => {
                    walk(&key, inner, out);
                    continue;
                }
                config::ValueKind::String(s) if s.is_empty() => "empty".to_owned(),
                config::ValueKind::String(s) => s,
                config::ValueKind::Array(a) if a.is_empty() => "[]".to_owned(),
                other => other.to_string(),
            };
            out.insert(key, shown);
        }
    }
    let table = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
        .build()
        .unwrap()
        .try_deserialize::<config::Map<String, config::Value>>()
        .unwrap();
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

/// The rows of the README's configuration table: each key it names (a row may name two, as
/// `` `database.user` / `.password` ``) with the default the row gives it.
fn table_rows() -> Vec<(String, String)> {
    let readme = readme();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("the README has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let keys: Vec<&str> = cells[0]
            .trim_start_matches("| ")
            .split(" / ")
            .map(|k| k.trim().trim_matches('`'))
            .collect();
        let defaults: Vec<&str> = cells[1]
            .split(" / ")
            .map(|d| d.trim().trim_matches('`'))
            .collect();
        assert_eq!(
            keys.len(),
            defaults.len(),
            "README: `{line}` names {} keys and {} defaults",
            keys.len(),
            defaults.len()
        );
        let first = keys[0];
        let section = first.rsplit_once('.').map_or("", |(s, _)| s);
        for (key, default) in keys.iter().zip(defaults) {
            let key = match key.strip_prefix('.') {
                Some(field) => format!("{section}.{field}"),
                None => (*key).to_owned(),
            };
            rows.push((key, default.to_owned()));
        }
    }
    rows
}

#[test]
fn the_readme_configuration_table_names_every_key_with_its_default() {
    let defaults = default_keys();
    let rows = table_rows();
    assert!(rows.len() > 40, "found only {rows:?}");
    for (key, default) in &rows {
        let real = defaults.get(key).unwrap_or_else(|| {
            panic!("README names `{key}`, which is not a configuration key (config/default.toml)")
        });
        assert_eq!(
            default, real,
            "README gives `{key}` the default `{default}`; it is `{real}`"
        );
    }
    for key in defaults.keys() {
        assert!(
            rows.iter().any(|(k, _)| k == key),
            "README's configuration table has no row for `{key}`"
        );
    }
}

#[test]
fn the_readme_links_the_event_catalog_the_plugin_guide_and_files_that_exist() {
    let readme = readme();
    for wanted in ["](docs/events.md)", "](docs/plugins.md)"] {
        assert!(readme.contains(wanted), "README does not link {wanted}");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap();
        // Web pages, anchors, and the design notes outside the repository.
        if target.starts_with("http") || target.starts_with('#') || target.starts_with("../") {
            continue;
        }
        let path = target.split('#').next().unwrap();
        assert!(
            root.join(path).exists(),
            "README links {target}, which does not exist"
        );
    }
}
