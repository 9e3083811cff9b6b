//! docs/plugin-kits.md followed word for word, once in TypeScript and once in Python, with the
//! real `tributary` binary first on the `PATH`, in a fresh home directory, as a reader on a
//! clean machine would (the compilers and builds come from the usual cache, so only the first
//! run on a machine pays for them).
//!
//! The page marks each fenced block this test acts on with an HTML comment on the line before
//! its opening fence, `<!-- guide: FLOWS ACTION -->`, where FLOWS is `ts`, `python` or
//! `ts,python` (the walk-throughs the block belongs to) and ACTION is one of:
//!
//! - `run`: an `sh` block; its commands run one by one through bash, in the walk-through's
//!   working directory (a `cd` carries over to the next command, as in a terminal), and each
//!   must exit 0. Lines joined by a trailing `\`; blank lines, `#` lines and comments after two
//!   spaces (`  # …`) are left out; a heredoc is refused (files come from `file` blocks).
//! - `fails TEXT`: an `sh` block of one command, which must exit non-zero and print TEXT.
//! - `file PATH`: the block's text is written to PATH, relative to the working directory.
//! - `patch`: a `diff` block, a unified diff (`--- a/PATH`, `+++ b/PATH`, hunks whose line
//!   counts match their bodies, so `patch -p1` takes it too); each hunk's old lines must appear
//!   exactly once in the file, and are replaced by its new lines.
//! - `output`: a `text` block showing what the last command of the walk-through printed: each
//!   of its lines must be among the lines printed (standard output, then standard error), in
//!   order. Lines starting with `Built ` (a component's digest and build times vary) are not
//!   compared, and a port after `127.0.0.1:` or a size in megabytes (`4.0 MB`; components
//!   differ by language) matches any other.
//! - `skip REASON` (no FLOWS): not run, for the reason given. The steps that need the running
//!   mesh (`tributary up`, `plugins add`, `plugins install`, `plugins enable`, `sync`, `search`)
//!   are skipped here: tests/plugins_cli/add.rs adds and installs a component with these
//!   commands, tests/sync_cli.rs and tests/search_cli.rs run `sync` and `search`, and the
//!   examples run end to end through the real services in tests/tests/wasm/examples/.
//!
//! Every `sh` and `diff` block of the page carries a marker, so a step the page shows is
//! either run here or says why not. The page's unmarked `ts` and `python` blocks (the API
//! samples of "Inside the sandbox") are built into a new plugin of their language, so each is
//! type-checked against the TypeScript SDK, or has its imports resolved in the Python one.
//!
//! The reader's environment is the test's, with `HOME` a fresh directory, the binary first on
//! the `PATH`, `TRIBUTARY_CACHE_DIR` the cache this machine already has, and
//! `TRIBUTARY_PYTHON` the absolute path of `python3` (a version manager's shim, such as
//! pyenv's, finds no interpreter under another `HOME`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The page, relative to the repository.
const GUIDE: &str = "docs/plugin-kits.md";

/// What the test does with a marked block.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Run,
    Fails(String),
    File(String),
    Patch,
    Output,
    Skip(String),
}

/// A marked block of the page.
#[derive(Debug, Clone)]
struct Step {
    /// The line of its marker, 1-based.
    line: usize,
    /// The walk-throughs it belongs to (empty for `skip`).
    flows: Vec<String>,
    action: Action,
    /// The block's info string (`sh`, `diff`, `json`, …).
    lang: String,
    /// The block's text, its fence's indentation removed, ending with a newline.
    body: String,
}

fn guide_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(GUIDE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {GUIDE}: {e}"))
}

/// The marker `<!-- guide: … -->` on `line`, parsed.
fn parse_marker(line: &str, number: usize) -> Option<(Vec<String>, Action)> {
    let inner = line
        .trim()
        .strip_prefix("<!-- guide:")?
        .strip_suffix("-->")?
        .trim();
    let (first, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    let rest = rest.trim();
    if first == "skip" {
        assert!(!rest.is_empty(), "{GUIDE}:{number}: a skip marker says why");
        return Some((Vec::new(), Action::Skip(rest.to_owned())));
    }
    let flows: Vec<String> = first.split(',').map(str::to_owned).collect();
    for flow in &flows {
        assert!(
            flow == "ts" || flow == "python",
            "{GUIDE}:{number}: unknown walk-through `{flow}` (ts or python)"
        );
    }
    let (action, argument) = rest.split_once(' ').unwrap_or((rest, ""));
    let argument = argument.trim().to_owned();
    let action = match action {
        "run" => Action::Run,
        "patch" => Action::Patch,
        "output" => Action::Output,
        "fails" if !argument.is_empty() => Action::Fails(argument),
        "file" if !argument.is_empty() => Action::File(argument),
        other => panic!("{GUIDE}:{number}: unknown or incomplete action `{other}`"),
    };
    Some((flows, action))
}

/// Every marked block of `text`; panics on a marker without a block, or an `sh` or `diff`
/// block without a marker.
fn steps(text: &str) -> Vec<Step> {
    let lines: Vec<&str> = text.lines().collect();
    let mut steps = Vec::new();
    let mut pending: Option<(usize, Vec<String>, Action)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let number = i + 1;
        if let Some((flows, action)) = parse_marker(line, number) {
            assert!(
                pending.is_none(),
                "{GUIDE}:{number}: a second marker before a block"
            );
            pending = Some((number, flows, action));
            i += 1;
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let lang = lang.trim().to_owned();
            let mut body = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                let text = lines[i];
                body.push_str(text.get(indent..).unwrap_or(text.trim_start()));
                body.push('\n');
                i += 1;
            }
            assert!(i < lines.len(), "{GUIDE}:{number}: a block that never ends");
            i += 1;
            match pending.take() {
                Some((line, flows, action)) => steps.push(Step {
                    line,
                    flows,
                    action,
                    lang,
                    body,
                }),
                None => assert!(
                    lang != "sh" && lang != "diff",
                    "{GUIDE}:{number}: this `{lang}` block has no `<!-- guide: … -->` marker: mark it to be run, or skipped with the reason"
                ),
            }
            continue;
        }
        if !line.trim().is_empty() {
            if let Some((at, _, _)) = &pending {
                panic!("{GUIDE}:{at}: the marker is not followed by a block");
            }
        }
        i += 1;
    }
    assert!(pending.is_none(), "{GUIDE}: the last marker has no block");
    steps
}

/// The commands of an `sh` block (see the module's documentation).
fn commands(step: &Step) -> Vec<String> {
    let mut found = Vec::new();
    let mut line = String::new();
    for raw in step.body.lines() {
        let trimmed = raw.trim();
        if line.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        line.push_str(trimmed.trim_end_matches('\\').trim_end());
        if trimmed.ends_with('\\') {
            line.push(' ');
            continue;
        }
        let command = std::mem::take(&mut line);
        let command = match command.find("  #") {
            Some(at) => command[..at].trim_end().to_owned(),
            None => command,
        };
        assert!(
            !command.contains("<<"),
            "{GUIDE}:{}: `{command}`: write files with a `file` block, not a heredoc",
            step.line
        );
        found.push(command);
    }
    found
}

/// One hunk of a unified diff: the lines it finds and what it puts in their place.
struct Hunk {
    old: Vec<String>,
    new: Vec<String>,
}

/// The file a `diff` block changes and its hunks, the counts of each checked.
fn parse_diff(step: &Step) -> (String, Vec<Hunk>) {
    let at = step.line;
    let mut lines = step.body.lines();
    let minus = lines.next().unwrap_or_default();
    let plus = lines.next().unwrap_or_default();
    let path = plus
        .strip_prefix("+++ b/")
        .unwrap_or_else(|| panic!("{GUIDE}:{at}: a diff starts `--- a/PATH` then `+++ b/PATH`"));
    assert_eq!(
        minus.strip_prefix("--- a/"),
        Some(path),
        "{GUIDE}:{at}: the diff's `---` and `+++` name different files"
    );
    let mut hunks: Vec<(usize, usize, Hunk)> = Vec::new();
    for line in lines {
        if let Some(header) = line.strip_prefix("@@ ") {
            let counts: Vec<usize> = header
                .split_whitespace()
                .take(2)
                .map(|range| {
                    let range = range.trim_start_matches(['-', '+']);
                    range
                        .split_once(',')
                        .map_or(Some(1), |(_, n)| n.parse().ok())
                        .unwrap_or_else(|| panic!("{GUIDE}:{at}: a bad hunk header `{line}`"))
                })
                .collect();
            assert_eq!(counts.len(), 2, "{GUIDE}:{at}: a bad hunk header `{line}`");
            hunks.push((
                counts[0],
                counts[1],
                Hunk {
                    old: Vec::new(),
                    new: Vec::new(),
                },
            ));
            continue;
        }
        let (_, _, hunk) = hunks
            .last_mut()
            .unwrap_or_else(|| panic!("{GUIDE}:{at}: diff lines before the first `@@`"));
        match line.chars().next() {
            Some('-') => hunk.old.push(line[1..].to_owned()),
            Some('+') => hunk.new.push(line[1..].to_owned()),
            Some(' ') => {
                hunk.old.push(line[1..].to_owned());
                hunk.new.push(line[1..].to_owned());
            }
            // An empty context line, its leading space lost to an editor.
            None => {
                hunk.old.push(String::new());
                hunk.new.push(String::new());
            }
            Some(_) => panic!("{GUIDE}:{at}: `{line}` is not a diff line"),
        }
    }
    assert!(!hunks.is_empty(), "{GUIDE}:{at}: a diff without hunks");
    let hunks = hunks
        .into_iter()
        .enumerate()
        .map(|(n, (old_count, new_count, hunk))| {
            assert_eq!(
                (hunk.old.len(), hunk.new.len()),
                (old_count, new_count),
                "{GUIDE}:{at}: hunk {} of {path} counts {old_count} old and {new_count} new lines in its header, and has {} and {}",
                n + 1,
                hunk.old.len(),
                hunk.new.len()
            );
            hunk
        })
        .collect();
    (path.to_owned(), hunks)
}

/// `text` with what differs from run to run and language to language masked: every
/// `127.0.0.1:<port>` as `127.0.0.1:PORT`, every size in megabytes (`4.0 MB`) as `N MB`.
fn masked(text: &str) -> String {
    without_sizes(&without_ports(&without_work_dir(text)))
}

/// `text` with an absolute path into a plugin's `dist/` (which depends on where the test
/// runs) as `~/notes/dist/…`, as the page shows it.
fn without_work_dir(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.split(' ')
                .map(|word| match word.find("/dist/") {
                    Some(at) if word.starts_with('/') => format!("~/notes{}", &word[at..]),
                    _ => word.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with every `<number> MB` as `N MB`.
fn without_sizes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" MB") {
        let before = &rest[..at];
        let number = before.len()
            - before
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
                .len();
        if number > 0 {
            out.push_str(&before[..before.len() - number]);
            out.push_str("N MB");
        } else {
            out.push_str(before);
            out.push_str(" MB");
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

/// `text` with every `127.0.0.1:<port>` as `127.0.0.1:PORT`.
fn without_ports(text: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(HOST) {
        out.push_str(&rest[..at + HOST.len()]);
        rest = &rest[at + HOST.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PORT");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// Where the kit keeps its cache, as the binary works it out (so the reader's fresh home
/// reuses the compilers and builds of this machine).
fn cache_root() -> PathBuf {
    for var in ["TRIBUTARY_CACHE_DIR", "XDG_CACHE_HOME"] {
        if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
}

/// The Python interpreter the kit would run, as an absolute path: with HOME changed, a
/// version manager's `python3` shim (pyenv) would not find its interpreters.
fn python() -> String {
    if let Some(python) = std::env::var("TRIBUTARY_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return python;
    }
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "python3 does not run: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// A reader following one walk-through: a home directory, a terminal's working directory and
/// exports, and what the last command printed.
struct Reader {
    flow: &'static str,
    home: tempfile::TempDir,
    scratch: tempfile::TempDir,
    bin: PathBuf,
    cwd: PathBuf,
    exports: Vec<String>,
    last_output: Option<String>,
    python: String,
}

impl Reader {
    fn new(flow: &'static str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let bin = scratch.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tributary"), bin.join("tributary")).unwrap();
        let cwd = home.path().to_owned();
        Reader {
            flow,
            home,
            scratch,
            bin,
            cwd,
            exports: Vec::new(),
            last_output: None,
            python: python(),
        }
    }

    /// Runs `command` as typed in the reader's terminal: its exit code and what it printed.
    fn run(&mut self, command: &str) -> (i32, String) {
        let cwd_file = self.scratch.path().join("cwd");
        let script = format!(
            "{}\ncd \"$GUIDE_CWD\" || exit 97\n{command}\n__status=$?\npwd > \"$GUIDE_CWD_FILE\"\nexit $__status\n",
            self.exports.join("\n")
        );
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let output = Command::new("bash")
            .args(["-c", &script])
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("TRIBUTARY_CACHE_DIR", cache_root())
            .env("TRIBUTARY_PYTHON", &self.python)
            .env_remove("TRIBUTARY_CONFIG")
            .env_remove("XDG_CACHE_HOME")
            .env("GUIDE_CWD", &self.cwd)
            .env("GUIDE_CWD_FILE", &cwd_file)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bash runs");
        if let Ok(cwd) = std::fs::read_to_string(&cwd_file) {
            self.cwd = PathBuf::from(cwd.trim());
        }
        if command.starts_with("export ") {
            self.exports.push(command.to_owned());
        }
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.last_output = Some(printed.clone());
        (output.status.code().unwrap_or(-1), printed)
    }

    fn take(&mut self, step: &Step) {
        let at = format!("{GUIDE}:{} ({} walk-through)", step.line, self.flow);
        match &step.action {
            Action::Skip(_) => {}
            Action::Run => {
                assert_eq!(step.lang, "sh", "{at}: `run` is for sh blocks");
                for command in commands(step) {
                    let (code, printed) = self.run(&command);
                    assert_eq!(
                        code,
                        0,
                        "{at}: `{command}` exited {code}, in {}:\n{printed}",
                        self.cwd.display()
                    );
                }
            }
            Action::Fails(text) => {
                assert_eq!(step.lang, "sh", "{at}: `fails` is for sh blocks");
                let commands = commands(step);
                assert_eq!(commands.len(), 1, "{at}: a `fails` block has one command");
                let (code, printed) = self.run(&commands[0]);
                assert_ne!(
                    code, 0,
                    "{at}: `{}` was to fail naming `{text}`, and succeeded:\n{printed}",
                    commands[0]
                );
                assert!(
                    printed.contains(text.as_str()),
                    "{at}: `{}` failed without naming `{text}`:\n{printed}",
                    commands[0]
                );
            }
            Action::File(path) => {
                let target = self.cwd.join(path);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(&target, &step.body)
                    .unwrap_or_else(|e| panic!("{at}: cannot write {}: {e}", target.display()));
            }
            Action::Patch => {
                assert_eq!(step.lang, "diff", "{at}: `patch` is for diff blocks");
                let (path, hunks) = parse_diff(step);
                let target = self.cwd.join(&path);
                let text = std::fs::read_to_string(&target)
                    .unwrap_or_else(|e| panic!("{at}: cannot read {}: {e}", target.display()));
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                for (n, hunk) in hunks.iter().enumerate() {
                    let found: Vec<usize> = (0..=lines.len().saturating_sub(hunk.old.len()))
                        .filter(|&start| lines[start..start + hunk.old.len()] == hunk.old[..])
                        .collect();
                    assert_eq!(
                        found.len(),
                        1,
                        "{at}: hunk {} of the diff is to change lines of {path} found exactly once; they are found {} times:\n{}",
                        n + 1,
                        found.len(),
                        hunk.old.join("\n")
                    );
                    lines.splice(found[0]..found[0] + hunk.old.len(), hunk.new.clone());
                }
                let mut patched = lines.join("\n");
                if text.ends_with('\n') {
                    patched.push('\n');
                }
                std::fs::write(&target, patched).unwrap();
            }
            Action::Output => {
                let printed = self
                    .last_output
                    .clone()
                    .unwrap_or_else(|| panic!("{at}: an output block before any command"));
                let printed = masked(&printed);
                let mut actual = printed.lines().map(str::trim_end);
                for wanted in step.body.lines().map(str::trim_end) {
                    if wanted.is_empty() || wanted.starts_with("Built ") {
                        continue;
                    }
                    let wanted = masked(wanted);
                    assert!(
                        actual.any(|line| line == wanted),
                        "{at}: the page shows the line\n{wanted}\nwhich the last command did not print (in this order):\n{printed}"
                    );
                }
            }
        }
    }
}

/// Follows every step of `flow`, in the page's order.
fn follow(flow: &'static str) {
    let steps = steps(&guide_text());
    let mut reader = Reader::new(flow);
    for step in steps.iter().filter(|s| s.flows.iter().any(|f| f == flow)) {
        reader.take(step);
    }
}

/// The page's `ts` or `python` code blocks (the API samples of "Inside the sandbox") as
/// modules of a plugin: each block's imports kept at the top, the rest in a function, so that
/// building the plugin type-checks them (TypeScript) or resolves their imports (Python).
fn sample_modules(lang: &str) -> Vec<(String, String)> {
    let blocks: Vec<String> = unmarked_blocks(&guide_text(), lang);
    assert!(!blocks.is_empty(), "{GUIDE} has no `{lang}` samples");
    blocks
        .iter()
        .enumerate()
        .map(|(n, block)| {
            let (imports, body): (Vec<&str>, Vec<&str>) = block
                .lines()
                .partition(|line| line.starts_with("import ") || line.starts_with("from "));
            let indented: Vec<String> = body.iter().map(|line| format!("  {line}")).collect();
            if lang == "ts" {
                let text = format!(
                    "{}\n\nexport async function sample(): Promise<void> {{\n{}\n}}\n",
                    imports.join("\n"),
                    indented.join("\n")
                );
                (format!("src/sample{n}.ts"), text)
            } else {
                let text = format!(
                    "{}\n\n\ndef sample():\n{}\n  return None\n",
                    imports.join("\n"),
                    indented.join("\n")
                );
                (format!("src/sample{n}.py"), text)
            }
        })
        .collect()
}

/// The text of every `lang` block of `text` no marker acts on.
fn unmarked_blocks(text: &str, lang: &str) -> Vec<String> {
    let marked: Vec<String> = steps(text).into_iter().map(|s| s.body).collect();
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().strip_prefix("```") != Some(lang) {
            continue;
        }
        let mut body = String::new();
        for inner in lines.by_ref() {
            if inner.trim() == "```" {
                break;
            }
            body.push_str(inner);
            body.push('\n');
        }
        if !marked.contains(&body) {
            found.push(body);
        }
    }
    found
}

/// A new plugin in `lang` holding the page's samples builds.
fn samples_build(lang: &'static str) {
    let mut reader = Reader::new(lang);
    let (code, printed) = reader.run(&format!(
        "tributary plugins new com.example.guide-samples --type connector --lang {lang} samples && cd samples"
    ));
    assert_eq!(code, 0, "{printed}");
    let modules = sample_modules(lang);
    for (path, text) in &modules {
        std::fs::write(reader.cwd.join(path), text).unwrap();
    }
    if lang == "python" {
        let app = reader.cwd.join("src/app.py");
        let mut text = std::fs::read_to_string(&app).unwrap();
        for n in 0..modules.len() {
            text.push_str(&format!(
                "import sample{n}  # noqa: E402, F401 (the guide's samples)\n"
            ));
        }
        std::fs::write(&app, text).unwrap();
    }
    let (code, printed) = reader.run("tributary plugins build");
    assert_eq!(
        code, 0,
        "the {lang} samples of {GUIDE} do not build against the SDK:\n{printed}\n{modules:#?}"
    );
}

#[test]
fn the_typescript_samples_of_the_guide_type_check_against_the_sdk() {
    samples_build("ts");
}

#[test]
fn the_python_samples_of_the_guide_import_what_the_sdk_has() {
    samples_build("python");
}

#[test]
fn every_sh_and_diff_block_of_the_guide_is_marked_and_each_walk_through_is_complete() {
    let steps = steps(&guide_text());
    for flow in ["ts", "python"] {
        let mine: Vec<&Step> = steps
            .iter()
            .filter(|s| s.flows.iter().any(|f| f == flow))
            .collect();
        let commands: Vec<String> = mine
            .iter()
            .filter(|s| matches!(s.action, Action::Run | Action::Fails(_)))
            .flat_map(|s| commands(s))
            .collect();
        for expected in [
            "tributary plugins new com.example.notes --type connector",
            "tributary plugins test",
            "tributary plugins test --case authors --update",
            "tributary plugins package",
            "tributary plugins new com.example.chat --type channel",
        ] {
            assert!(
                commands.iter().any(|c| c.starts_with(expected)),
                "the {flow} walk-through never runs `{expected}`: {commands:#?}"
            );
        }
        assert_eq!(
            mine.iter()
                .filter(|s| matches!(s.action, Action::Fails(_)))
                .count(),
            1,
            "the {flow} walk-through shows one refused permission"
        );
        assert!(
            mine.iter().any(|s| s.action == Action::Patch),
            "the {flow} walk-through edits the worked example"
        );
    }
    let skipped: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s.action, Action::Skip(_)))
        .flat_map(commands)
        .collect();
    for mesh in [
        "tributary up",
        "tributary plugins add",
        "tributary plugins install",
        "tributary plugins enable",
        "tributary sync",
        "tributary search",
    ] {
        assert!(
            skipped.iter().any(|c| c.starts_with(mesh)),
            "the page no longer shows `{mesh}` among the mesh steps: {skipped:#?}"
        );
    }
}

#[test]
fn a_diff_hunk_is_checked_against_its_header_and_outputs_are_masked() {
    let step = |body: &str| Step {
        line: 1,
        flows: vec!["ts".to_owned()],
        action: Action::Patch,
        lang: "diff".to_owned(),
        body: body.to_owned(),
    };
    let (path, hunks) = parse_diff(&step(
        "--- a/x.txt\n+++ b/x.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n",
    ));
    assert_eq!(path, "x.txt");
    assert_eq!(hunks[0].old, ["a", "b"]);
    assert_eq!(hunks[0].new, ["a", "c"]);
    let miscounted = std::panic::catch_unwind(|| {
        parse_diff(&step(
            "--- a/x.txt\n+++ b/x.txt\n@@ -1,3 +1,2 @@\n a\n-b\n+c\n",
        ))
    });
    assert!(miscounted.is_err());
    assert_eq!(
        masked("GET 127.0.0.1:44741/notes and 127.0.0.1:9, (4.0 MB: a), 12 MB, MB"),
        "GET 127.0.0.1:PORT/notes and 127.0.0.1:PORT, (N MB: a), N MB, MB"
    );
}

#[test]
fn the_typescript_walk_through_works_as_written() {
    follow("ts");
}

#[test]
fn the_python_walk_through_works_as_written() {
    follow("python");
}
