//! `tributary plugins build <DIR>`: a plugin's source into its component.
//!
//! The component is written next to `plugin.json` as the file its entrypoint names
//! (`wasm:<name>.wasm`) and its SHA-256 into the manifest's `sha256`, so the directory is
//! then a plugin `tributary plugins add` accepts. A build is cached by the content of its
//! inputs (the plugin's `src/`, its type, its `tsconfig.json`, the SDK and the tool versions):
//! building the same thing again copies the component from the cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::files::{cache_entry, write_file, InputHash, KitFiles};
use super::toolchain::{self, Language};
use super::KitError;

/// How to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Build even when the cache holds the component (to time a cold build).
    pub no_cache: bool,
}

/// How long the parts of a build took, as the build script reports them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildTimings {
    /// Type checking (TypeScript), in milliseconds.
    #[serde(default)]
    pub check_ms: u64,
    /// Bundling the source into one module, in milliseconds.
    #[serde(default)]
    pub bundle_ms: u64,
    /// Making the component, in milliseconds.
    #[serde(default)]
    pub componentize_ms: u64,
}

/// A built plugin.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Built {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest, `sha256` filled in.
    #[serde(skip)]
    pub manifest: Value,
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// `connector` or `channel`.
    pub plugin_type: String,
    /// What it is written in.
    pub language: &'static str,
    /// The component.
    pub component: PathBuf,
    /// The component's SHA-256, lower-case hex.
    pub sha256: String,
    /// The component's size in bytes.
    pub bytes: u64,
    /// Whether it came from the build cache.
    pub cached: bool,
    /// How long this build took, in milliseconds (copying from the cache included).
    pub elapsed_ms: u64,
    /// The build script's timings (none from the cache).
    pub timings: Option<BuildTimings>,
}

/// What the kit reads of a plugin's manifest before it is complete.
#[derive(Debug, Clone)]
pub struct PluginSource {
    /// The plugin's directory.
    pub dir: PathBuf,
    /// The manifest as written.
    pub manifest: Value,
    /// Its id.
    pub id: String,
    /// Its version.
    pub version: String,
    /// `connector` or `channel`.
    pub plugin_type: String,
    /// The component's file name (`<name>.wasm`).
    pub wasm_name: String,
    /// What the source is written in.
    pub language: Language,
}

impl PluginSource {
    /// Reads the plugin in `dir`: its `plugin.json` and which source it has.
    pub fn read(dir: &Path) -> Result<Self, KitError> {
        let manifest_path = dir.join("plugin.json");
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| KitError::io("read", &manifest_path, e))?;
        let manifest: Value = serde_json::from_str(&text)
            .map_err(|e| KitError::plugin(&manifest_path, format!("not valid JSON: {e}")))?;
        let field = |name: &str| {
            manifest
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let missing = |name: &str| KitError::plugin(&manifest_path, format!("`{name}` is missing"));
        let id = field("id").ok_or_else(|| missing("id"))?;
        let version = field("version").ok_or_else(|| missing("version"))?;
        let plugin_type = field("type").ok_or_else(|| missing("type"))?;
        if plugin_type != "connector" && plugin_type != "channel" {
            return Err(KitError::plugin(
                &manifest_path,
                format!(
                    "`type` is `{plugin_type}`: the kit builds `connector` and `channel` plugins"
                ),
            ));
        }
        let entrypoint = field("entrypoint").ok_or_else(|| missing("entrypoint"))?;
        let wasm_name = entrypoint
            .strip_prefix("wasm:")
            .filter(|name| name.ends_with(".wasm") && !name.contains(['/', '\\']) && name.len() > 5)
            .ok_or_else(|| {
                KitError::plugin(
                    &manifest_path,
                    format!("`entrypoint` is `{entrypoint}`: it must be `wasm:<name>.wasm`, the component next to plugin.json"),
                )
            })?
            .to_owned();
        let language = if dir.join("src/index.ts").is_file() || dir.join("src/index.js").is_file() {
            Language::TypeScript
        } else if dir.join("src/app.py").is_file() {
            Language::Python
        } else {
            return Err(KitError::plugin(
                dir,
                "no source: a TypeScript plugin has src/index.ts (or src/index.js), a Python plugin src/app.py",
            ));
        };
        Ok(PluginSource {
            dir: dir.to_path_buf(),
            manifest,
            id,
            version,
            plugin_type,
            wasm_name,
            language,
        })
    }
}

/// Builds the plugin in `dir` (see the module's documentation).
pub fn build(dir: &Path, options: BuildOptions) -> Result<Built, KitError> {
    let started = Instant::now();
    let source = PluginSource::read(dir)?;
    let kit = KitFiles::materialize()?;
    link_sdk(&source.dir, source.language, &kit)?;
    let key = input_hash(&source, &kit)?;
    let built_here = std::cell::Cell::new(None);
    let compile = |out: &Path| -> Result<(), KitError> {
        let tools = toolchain::ensure(source.language, &kit)?;
        let timings = run_build_script(&source, &kit, &tools, &out.join("component.wasm"))?;
        let report = serde_json::to_vec(&timings).unwrap_or_default();
        write_file(&out.join("timings.json"), &report)?;
        built_here.set(Some(timings));
        Ok(())
    };
    let entry = if options.no_cache {
        let scratch = tempdir_in_cache()?;
        if let Err(e) = compile(&scratch) {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
        scratch
    } else {
        cache_entry("tributary-plugin-builds", &key, compile)?
    };
    let component = source.dir.join(&source.wasm_name);
    let cached_component = entry.join("component.wasm");
    std::fs::copy(&cached_component, &component)
        .map_err(|e| KitError::io("copy the component to", &component, e))?;
    if options.no_cache {
        let _ = std::fs::remove_dir_all(&entry);
    }
    let bytes = std::fs::read(&component).map_err(|e| KitError::io("read", &component, e))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let manifest = fill_in_sha256(&source.dir.join("plugin.json"), &sha256)?;
    let timings = built_here.take();
    Ok(Built {
        dir: source.dir.clone(),
        manifest,
        id: source.id,
        version: source.version,
        plugin_type: source.plugin_type,
        language: source.language.as_str(),
        component,
        sha256,
        bytes: bytes.len() as u64,
        cached: timings.is_none(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        timings,
    })
}

/// A scratch directory for an uncached build.
fn tempdir_in_cache() -> Result<PathBuf, KitError> {
    let dir = super::files::cache_root()
        .join("tributary-plugin-builds")
        .join(format!(
            "uncached.{}.{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
    std::fs::create_dir_all(&dir).map_err(|e| KitError::io("create", &dir, e))?;
    Ok(dir)
}

/// The build's cache key: everything that goes into the component.
fn input_hash(source: &PluginSource, kit: &KitFiles) -> Result<String, KitError> {
    let mut hash = InputHash::default();
    hash.add("kit", kit.hash().as_bytes());
    hash.add("language", source.language.as_str().as_bytes());
    // Of the manifest, only the type goes into the component (it picks the world): plugins
    // differing in id, permissions or configuration share a build.
    hash.add("type", source.plugin_type.as_bytes());
    let mut files = Vec::new();
    collect_files(&source.dir.join("src"), &mut files)?;
    files.sort();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| KitError::io("read", &file, e))?;
        let name = file
            .strip_prefix(&source.dir)
            .unwrap_or(&file)
            .to_string_lossy();
        hash.add(&name, &bytes);
    }
    let tsconfig = source.dir.join("tsconfig.json");
    if let Ok(bytes) = std::fs::read(&tsconfig) {
        hash.add("tsconfig.json", &bytes);
    }
    Ok(hash.finish())
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), KitError> {
    let entries = std::fs::read_dir(dir).map_err(|e| KitError::io("read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| KitError::io("read", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "__pycache__" || name == "node_modules" || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Runs the SDK's build script for `source`, writing the component to `out`.
fn run_build_script(
    source: &PluginSource,
    kit: &KitFiles,
    tools: &Path,
    out: &Path,
) -> Result<BuildTimings, KitError> {
    let (mut command, program, hint) = match source.language {
        Language::TypeScript => {
            let mut node = Command::new("node");
            node.arg(kit.typescript().join("build.mjs"))
                .arg("--sdk")
                .arg(kit.typescript());
            (node, "node".to_owned(), toolchain::NODE_HINT)
        }
        Language::Python => {
            let mut python = Command::new(toolchain::python());
            python
                .arg(kit.python().join("build.py"))
                .arg("--sdk")
                .arg(kit.python());
            (python, toolchain::python(), toolchain::PYTHON_HINT)
        }
    };
    command
        .arg("--toolchain")
        .arg(tools)
        .arg("--wit")
        .arg(kit.wit())
        .arg("--plugin")
        .arg(&source.dir)
        .arg("--out")
        .arg(out);
    let what = format!("building {} ({})", source.id, source.dir.display());
    let output = toolchain::run(command, &program, hint, &what)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    let timings = serde_json::from_str(last).unwrap_or_default();
    if !out.is_file() {
        return Err(KitError::ToolFailed {
            what,
            status: "no component written".to_owned(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(timings)
}

/// Writes `sha256` into the manifest at `path`, keeping the file as its author wrote it
/// (only the value changes, or one line is added after `entrypoint`); answers the manifest.
pub fn fill_in_sha256(path: &Path, sha256: &str) -> Result<Value, KitError> {
    let text = std::fs::read_to_string(path).map_err(|e| KitError::io("read", path, e))?;
    let edited = edit_sha256(&text, sha256).filter(|edited| {
        serde_json::from_str::<Value>(edited)
            .is_ok_and(|v| v.get("sha256").and_then(Value::as_str) == Some(sha256))
    });
    let edited = match edited {
        Some(edited) => edited,
        None => {
            let mut manifest: Value = serde_json::from_str(&text)
                .map_err(|e| KitError::plugin(path, format!("not valid JSON: {e}")))?;
            if let Some(object) = manifest.as_object_mut() {
                object.insert("sha256".into(), Value::String(sha256.to_owned()));
            }
            let mut pretty = serde_json::to_string_pretty(&manifest).unwrap_or_default();
            pretty.push('\n');
            pretty
        }
    };
    if edited != text {
        write_file(path, edited.as_bytes())?;
    }
    serde_json::from_str(&edited)
        .map_err(|e| KitError::plugin(path, format!("not valid JSON: {e}")))
}

/// `text` with its top-level `"sha256"` value set to `sha256`: the value replaced, or a member
/// added after `"entrypoint": "…",`. None when neither is found as expected.
fn edit_sha256(text: &str, sha256: &str) -> Option<String> {
    if let Some(start) = text.find("\"sha256\"") {
        let after_key = start + "\"sha256\"".len();
        let open = after_key + text[after_key..].find('"')?;
        let close = open + 1 + text[open + 1..].find('"')?;
        if !text[after_key..open].trim().starts_with(':') {
            return None;
        }
        return Some(format!("{}{sha256}{}", &text[..open + 1], &text[close..]));
    }
    let key = text.find("\"entrypoint\"")?;
    let line_start = text[..key].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..key];
    let comma = key + text[key..].find(',')?;
    Some(format!(
        "{}\n{indent}\"sha256\": \"{sha256}\",{}",
        &text[..comma + 1],
        &text[comma + 1..]
    ))
}

/// Writes the SDK of `language` into the plugin in `dir`, where editors find its types:
/// TypeScript's to `node_modules/@tributary/plugin/` (where the TypeScript compiler looks
/// too); Python's to `.tributary-sdk/python/tributary_plugin/`, with a `pyrightconfig.json`
/// naming that folder (unless the plugin has its own) for Pylance and pyright. Each copy is
/// rewritten only when the SDK changed. The build itself uses the SDK embedded in the binary.
pub fn link_sdk(dir: &Path, language: Language, kit: &KitFiles) -> Result<(), KitError> {
    match language {
        Language::TypeScript => {
            let files = super::files::embedded_under("sdk/typescript/").filter(|(path, _)| {
                let top = path.split('/').next().unwrap_or("");
                matches!(top, "package.json" | "src" | "types" | "README.md")
            });
            copy_sdk(&dir.join("node_modules/@tributary/plugin"), "", files, kit)
        }
        Language::Python => {
            let files = super::files::embedded_under("sdk/python/tributary_plugin/");
            copy_sdk(
                &dir.join(".tributary-sdk/python"),
                "tributary_plugin",
                files,
                kit,
            )?;
            let config = dir.join("pyrightconfig.json");
            if !config.exists() {
                write_file(
                    &config,
                    b"{\n  \"extraPaths\": [\".tributary-sdk/python\"]\n}\n",
                )?;
            }
            Ok(())
        }
    }
}

/// Writes `files` under `target/<under>/` unless the stamp in `target` says this SDK is
/// there already; what was there before goes.
fn copy_sdk<'a>(
    target: &Path,
    under: &str,
    files: impl Iterator<Item = (&'a str, &'a [u8])>,
    kit: &KitFiles,
) -> Result<(), KitError> {
    let stamp = target.join(".tributary-sdk");
    if std::fs::read_to_string(&stamp).is_ok_and(|hash| hash == kit.hash()) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(target);
    for (path, bytes) in files {
        write_file(&target.join(under).join(path), bytes)?;
    }
    write_file(&stamp, kit.hash().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::edit_sha256;

    const HASH: &str = "ab12";

    #[test]
    fn a_sha256_value_is_replaced_in_place() {
        let text = "{\n  \"id\": \"x\",\n  \"sha256\": \"old\",\n  \"type\": \"connector\"\n}\n";
        let edited = edit_sha256(text, HASH).unwrap();
        assert_eq!(
            edited,
            "{\n  \"id\": \"x\",\n  \"sha256\": \"ab12\",\n  \"type\": \"connector\"\n}\n"
        );
    }

    #[test]
    fn a_missing_sha256_goes_after_the_entrypoint_with_its_indent() {
        let text = "{\n    \"entrypoint\": \"wasm:x.wasm\",\n    \"type\": \"channel\"\n}\n";
        let edited = edit_sha256(text, HASH).unwrap();
        assert_eq!(
            edited,
            "{\n    \"entrypoint\": \"wasm:x.wasm\",\n    \"sha256\": \"ab12\",\n    \"type\": \"channel\"\n}\n"
        );
    }
}
