//! `tributary plugins new <id> --type connector|channel --lang ts|python [DIR]`: a new
//! plugin from the SDK's template, which builds, passes its own tests and installs as
//! written.
//!
//! A template (`sdk/<language>/templates/<type>/`) is a complete plugin with the id
//! `com.example.starter`, the name `Starter` and the component `starter.wasm`; the copy gets
//! the new id, a name made from it and `<last label of the id>.wasm`.

use std::path::{Path, PathBuf};

use tributary_proto::manifest::is_reverse_dns;

use super::build::link_sdk;
use super::files::{embedded_under, write_file, KitFiles};
use super::toolchain::Language;
use super::KitError;

/// The id every template has.
const TEMPLATE_ID: &str = "com.example.starter";
/// The component file every template has.
const TEMPLATE_WASM: &str = "starter.wasm";
/// The display name every template has.
const TEMPLATE_NAME: &str = "Starter";

/// What `plugins new` was asked.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    /// The plugin's id (`com.example.notes`).
    pub id: String,
    /// `connector` or `channel`.
    pub plugin_type: String,
    /// What it is written in.
    pub language: Language,
    /// Where to write it; `./<last label of the id>` when none.
    pub dir: Option<PathBuf>,
    /// Its display name; made from the id when none.
    pub name: Option<String>,
}

/// Writes the new plugin; answers its directory.
pub fn scaffold(new: &NewPlugin) -> Result<PathBuf, KitError> {
    if !is_reverse_dns(&new.id) {
        return Err(KitError::plugin(
            Path::new(&new.id),
            "not a plugin id: use reverse-DNS labels of lower-case letters, digits and `-`, such as `com.example.notes`",
        ));
    }
    let short = new.id.rsplit('.').next().unwrap_or(&new.id).to_owned();
    let dir = new.dir.clone().unwrap_or_else(|| PathBuf::from(&short));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(KitError::plugin(
            &dir,
            "is not empty: choose a new directory",
        ));
    }
    let name = new.name.clone().unwrap_or_else(|| display_name(&short));
    let prefix = format!(
        "sdk/{}/templates/{}/",
        language_dir(new.language),
        new.plugin_type
    );
    let mut written = 0;
    for (path, bytes) in embedded_under(&prefix) {
        let bytes = match std::str::from_utf8(bytes) {
            Ok(text) => text
                .replace(TEMPLATE_ID, &new.id)
                .replace(TEMPLATE_WASM, &format!("{short}.wasm"))
                .replace(TEMPLATE_NAME, &name)
                .into_bytes(),
            Err(_) => bytes.to_vec(),
        };
        write_file(&dir.join(path), &bytes)?;
        written += 1;
    }
    if written == 0 {
        return Err(KitError::Host(format!(
            "this build of tributary has no template for a {} in {}",
            new.plugin_type,
            new.language.as_str()
        )));
    }
    link_sdk(&dir, new.language, &KitFiles::materialize()?)?;
    Ok(dir)
}

/// The SDK folder of `language`.
fn language_dir(language: Language) -> &'static str {
    match language {
        Language::TypeScript => "typescript",
        Language::Python => "python",
    }
}

/// `rss-feed` as `Rss feed`.
fn display_name(short: &str) -> String {
    let words = short.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn a_name_is_made_from_the_last_label() {
        assert_eq!(display_name("rss-feed"), "Rss feed");
        assert_eq!(display_name("notes"), "Notes");
    }
}
