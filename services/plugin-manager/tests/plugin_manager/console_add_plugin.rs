//! The Plugins page's "Add a plugin" form over plain HTTP, posted as a browser without
//! JavaScript posts it (`multipart/form-data`, the CSRF token first): an archive added and
//! shown on its catalog row, audited as the console; a forged post refused with nothing added;
//! an archive over the admin API's limit refused 413 naming it; the same version refused until
//! "replace" is ticked; an archive that is not one refused naming why.

use tributary_kit::testing::plugins::{TASKS, TASKS_SPEC};
use tributary_kit::testing::{RunningService, TestEnv};
use tributary_plugin_manager::console::add_plugin::{too_large_message, ADD_PATH};
use tributary_plugin_manager::console::auth::CSRF_REFUSED;
use tributary_plugin_manager::http_api::MAX_ARCHIVE_BYTES;

use crate::add_plugin::{listed, managed, nothing_added, started, Archive};
use crate::console::{admin_token, Browser, Page};
use crate::support::*;

/// The boundary of the forms posted here.
const BOUNDARY: &str = "tributary-test-boundary-7f3a";

/// A part of a multipart form: a field, or the archive as a file.
enum Part {
    Field(&'static str, String),
    File(&'static str, Vec<u8>),
}

/// The form's body, its parts in the order given (a browser sends them in the form's order).
fn multipart(parts: Vec<Part>) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Field(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(file_name, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"archive\"; filename=\"{file_name}\"\r\nContent-Type: application/gzip\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(&bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Posts `parts` to the form's action as `browser`.
async fn upload(browser: &mut Browser, parts: Vec<Part>) -> Page {
    let request = browser
        .http
        .post(format!("{}{ADD_PATH}", browser.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(parts));
    browser.send(request).await
}

/// The plugin manager with an empty managed plugin directory, and a browser signed in, with
/// the Plugins page's CSRF token.
async fn signed_in() -> (TestEnv, PluginDir, RunningService, Browser, String) {
    let (env, dir, pm) = started().await;
    let mut browser = Browser::new(&pm);
    browser.sign_in(&admin_token(&env)).await;
    let csrf = browser.get("/plugins").await.csrf();
    (env, dir, pm, browser, csrf)
}

/// The tasks plugin at 1.0.0 with `spec`, as a browser posts it.
fn tasks(csrf: &str, spec: &str, replace: bool) -> Vec<Part> {
    let mut parts = vec![
        Part::Field("csrf", csrf.to_owned()),
        Part::File("tasks-1.0.0.tar.gz", Archive::tasks("1.0.0", spec).finish()),
    ];
    if replace {
        parts.push(Part::Field("replace", "true".to_owned()));
    }
    parts
}

#[tokio::test]
async fn the_plugins_page_has_a_labelled_upload_form_with_its_token_first() {
    let (_env, _dir, pm, mut browser, _) = signed_in().await;

    let page = browser.get("/plugins").await;

    let form_at = page
        .body
        .find(&format!(
            "action=\"{ADD_PATH}\" enctype=\"multipart/form-data\""
        ))
        .unwrap_or_else(|| panic!("no upload form: {}", page.body));
    let form = &page.body[form_at..];
    let token_at = form.find("name=\"csrf\"").unwrap();
    for labelled in [
        "<label for=\"archive\">Plugin archive (.tar.gz)</label>",
        "type=\"file\" id=\"archive\" name=\"archive\"",
        "<label for=\"replace\">Replace an existing version",
        "type=\"checkbox\" id=\"replace\" name=\"replace\"",
    ] {
        let at = form
            .find(labelled)
            .unwrap_or_else(|| panic!("{labelled} in {form}"));
        assert!(token_at < at, "the token comes before {labelled}");
    }
    pm.stop().await;
}

#[tokio::test]
async fn an_archive_added_through_the_form_is_shown_on_its_row_and_audited_as_the_console() {
    // Proves the form adds as the admin API adds: the plugin is in the managed directory and
    // the catalog, the browser is taken to its row with a message, and the audit log names
    // the console.
    let (env, _dir, pm, mut browser, csrf) = signed_in().await;

    let done = upload(&mut browser, tasks(&csrf, TASKS_SPEC, false)).await;

    assert_eq!(done.status, 303, "{}", done.body);
    let row = format!("plugin-{TASKS}-1.0.0");
    assert_eq!(done.location, Some(format!("/plugins#{row}")));
    let page = browser.get("/plugins").await;
    for shown in [
        format!("Added Example Tasks ({TASKS}) 1.0.0 from tasks-1.0.0.tar.gz."),
        format!("<tr id=\"{row}\">"),
        format!("href=\"/plugins/{TASKS}/install\""),
    ] {
        assert!(page.body.contains(&shown), "{shown} in {}", page.body);
    }
    let target = managed(&env, "1.0.0");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        TASKS_SPEC
    );
    let admin = Admin::new(&env, &pm);
    assert_eq!(
        listed(&admin).await,
        [("1.0.0".to_owned(), target.display().to_string())]
    );
    let entry = admin.audit_entry("add_plugin").await;
    assert_eq!(entry["plugin_id"], TASKS, "{entry}");
    assert_eq!(
        entry["actor"],
        tributary_plugin_manager::console::console_actor(&env.config.plugin_manager.admin_token)
    );
    pm.stop().await;
}

#[tokio::test]
async fn a_forged_upload_without_the_sessions_token_is_refused_and_adds_nothing() {
    // Proves the multipart form is held to the CSRF check of every form: without its token,
    // with a wrong one, with the token after the archive, or without a session, it is refused
    // 403 and nothing is added.
    let (env, _dir, pm, mut browser, csrf) = signed_in().await;
    let archive = || Part::File("tasks.tar.gz", Archive::tasks("1.0.0", TASKS_SPEC).finish());

    let forged = [
        vec![archive()],
        vec![Part::Field("csrf", "not-the-token".to_owned()), archive()],
        vec![archive(), Part::Field("csrf", csrf.clone())],
    ];
    for parts in forged {
        let refused = upload(&mut browser, parts).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains(CSRF_REFUSED), "{}", refused.body);
    }
    let mut stranger = Browser::new(&pm);
    let refused = upload(
        &mut stranger,
        vec![Part::Field("csrf", csrf.clone()), archive()],
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    nothing_added(&env);
    assert!(listed(&Admin::new(&env, &pm)).await.is_empty());
    pm.stop().await;
}

#[tokio::test]
async fn an_archive_over_the_admin_apis_limit_is_refused_413_naming_it() {
    let (env, _dir, pm, mut browser, csrf) = signed_in().await;
    let mut archive = Archive::tasks("1.0.0", TASKS_SPEC).finish();
    archive.resize(MAX_ARCHIVE_BYTES + 1, 0);

    let refused = upload(
        &mut browser,
        vec![Part::Field("csrf", csrf), Part::File("big.tar.gz", archive)],
    )
    .await;

    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(
        refused.body.contains(&too_large_message()),
        "{}",
        refused.body
    );
    assert!(
        too_large_message().contains("64 MiB"),
        "{}",
        too_large_message()
    );
    assert!(
        refused.body.contains("enctype=\"multipart/form-data\""),
        "the Plugins page again: {}",
        refused.body
    );
    nothing_added(&env);
    pm.stop().await;
}

#[tokio::test]
async fn the_same_version_is_refused_409_until_replace_is_ticked() {
    // Proves a version once added is not overwritten by accident: the page says to tick the
    // box, and ticking it replaces the files.
    let (env, _dir, pm, mut browser, csrf) = signed_in().await;
    let added = upload(&mut browser, tasks(&csrf, TASKS_SPEC, false)).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let rebuilt = TASKS_SPEC.replace("body.items", "body.tasks");

    let refused = upload(&mut browser, tasks(&csrf, &rebuilt, false)).await;

    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = format!("Not added: `{TASKS}` 1.0.0 is already added. To replace it, choose the file again and tick \u{201c}Replace an existing version\u{201d}.");
    let escaped = message.replace('`', "&#x60;");
    assert!(
        refused.body.contains(&message) || refused.body.contains(&escaped),
        "{message} in {}",
        refused.body
    );
    let target = managed(&env, "1.0.0");
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        TASKS_SPEC
    );

    let replaced = upload(&mut browser, tasks(&csrf, &rebuilt, true)).await;

    assert_eq!(replaced.status, 303, "{}", replaced.body);
    assert_eq!(
        std::fs::read_to_string(target.join("tasks.toml")).unwrap(),
        rebuilt
    );
    let page = browser.get("/plugins").await;
    assert!(page.body.contains("replacing the copy"), "{}", page.body);
    pm.stop().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_plugin_archive_is_refused_400_saying_why() {
    let (env, _dir, pm, mut browser, csrf) = signed_in().await;

    let refused = upload(
        &mut browser,
        vec![
            Part::Field("csrf", csrf),
            Part::File("notes.txt", b"plugin.json, honestly".to_vec()),
        ],
    )
    .await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("Not added: the uploaded archive is not a readable .tar.gz: "),
        "{}",
        refused.body
    );
    nothing_added(&env);
    pm.stop().await;
}
