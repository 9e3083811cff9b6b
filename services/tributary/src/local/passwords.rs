//! Passwords `tributary up` makes for the identities of its own servers (NATS users,
//! PostgreSQL roles): one file per identity under a directory of `<data_dir>/secrets/`, made on
//! first start and kept, the directory 0700 and each file 0600.

use std::collections::BTreeMap;
use std::path::Path;

use secrecy::SecretString;

use super::LocalServerError;

/// Reads the password of each of `names` from `<dir>/<name>`, making the ones missing. `what`
/// names them in errors ("the NATS password", "the PostgreSQL password"). A file others may
/// read or change is refused, naming it and the `chmod` that fixes it.
pub(super) fn ensure<'a>(
    dir: &Path,
    names: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Result<BTreeMap<String, SecretString>, LocalServerError> {
    make_private_dir(dir)?;
    let mut passwords = BTreeMap::new();
    for name in names {
        let file = dir.join(name);
        if !file.exists() {
            // A letter first: nats-server reads a variable's value as a configuration value,
            // and one of digits only would be a number.
            let password = format!("n{}", tributary_plugin_manager::keys::random_token());
            tributary_plugin_manager::keys::write_private(&file, &password)
                .map_err(|e| LocalServerError::io(&file, e))?;
        }
        passwords.insert(name.to_owned(), read(&file, &format!("{what} of {name}"))?);
    }
    Ok(passwords)
}

/// The password in `file` (`what` names it in errors), refused when others may read or
/// change the file, or when it is empty.
pub(super) fn read(file: &Path, what: &str) -> Result<SecretString, LocalServerError> {
    let reading = format!("reading {what}");
    tributary_kit::http::check_secret_file_mode(file, what)
        .map_err(|e| LocalServerError::failed(&reading, e.to_string()))?;
    let text = std::fs::read_to_string(file).map_err(|e| LocalServerError::io(file, e))?;
    let password = text.trim();
    if password.is_empty() {
        return Err(LocalServerError::failed(
            &reading,
            format!(
                "{} is empty; delete it and `tributary up` makes a new one",
                file.display()
            ),
        ));
    }
    Ok(SecretString::from(password.to_owned()))
}

/// Makes `dir` and its parents, `dir` itself readable by its owner only.
fn make_private_dir(dir: &Path) -> Result<(), LocalServerError> {
    std::fs::create_dir_all(dir).map_err(|e| LocalServerError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| LocalServerError::io(dir, e))?;
    }
    Ok(())
}
