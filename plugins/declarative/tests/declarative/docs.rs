//! Every built-in declarative connector is documented where a user looks: a page in
//! `docs/connectors/` saying what of the API is covered and what is not, linked from the
//! README's status table.

use std::path::Path;

use tributary_declarative::BUILTIN_SPECS;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `tributary.google-contacts` → `google-contacts`, the name of its directory and page.
fn name(plugin_id: &str) -> &str {
    plugin_id.strip_prefix("tributary.").unwrap_or(plugin_id)
}

#[test]
fn every_built_in_spec_has_a_page_saying_what_is_covered_and_what_is_not() {
    for builtin in BUILTIN_SPECS {
        let page = read(&format!("docs/connectors/{}.md", name(builtin.plugin_id)));
        let headings: Vec<String> = page
            .lines()
            .filter(|l| l.starts_with("## "))
            .map(str::to_lowercase)
            .collect();
        assert!(
            headings.iter().any(|h| h.contains("covered")),
            "{}: no section on what is covered in {headings:?}",
            builtin.plugin_id
        );
        assert!(
            headings.iter().any(|h| h.contains(" not")) || page.contains("\nNot yet:"),
            "{}: nothing on what is not covered",
            builtin.plugin_id
        );
    }
}

#[test]
fn the_readme_status_table_links_every_built_in_spec() {
    let readme = read("README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| declarative connectors"))
        .expect("the README's status table has a declarative connectors row");
    for builtin in BUILTIN_SPECS {
        let link = format!("(docs/connectors/{}.md)", name(builtin.plugin_id));
        assert!(row.contains(&link), "the row lacks {link}: {row}");
    }
}
