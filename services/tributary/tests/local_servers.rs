//! `tributary up` on a machine where nobody configured NATS or PostgreSQL: the servers it
//! starts for itself ([`tributary::local`]), `--demo`, and the message when a program is
//! missing. Every test keeps its servers on free ports under its own temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary::local::{LocalNats, LocalPostgres};
use tributary_search::query::{SearchQuery, SearchResults};

/// A `tributary up` child that is interrupted (so it stops its servers) if a test panics.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Up {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Up {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// `tributary up --own-servers` with everything under `data_dir` and every HTTP port free.
fn spawn_up(data_dir: &Path, extra: &[&str], path_var: &str) -> Up {
    let mut command = common::up_command(path_var.as_ref());
    command
        .arg("--own-servers")
        .args(extra)
        .env("TRIBUTARY__DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Up(command.spawn().unwrap())
}

/// Reads `child`'s standard output until the demo announcement, and returns the number of
/// entries it says are searchable and the command it tells the user to run.
fn wait_for_demo(child: &mut Child) -> (usize, String) {
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut seen = Vec::new();
    let mut ready = None;
    while Instant::now() < deadline {
        match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("Demo data is ready: ") {
                    ready = rest.split(' ').next().and_then(|n| n.parse::<usize>().ok());
                }
                if let (Some(count), true) = (ready, line.contains(" search loyalty")) {
                    return (count, line.trim().to_owned());
                }
                seen.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "tributary up exited with {status}; it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let status = child.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    panic!(
        "no demo announcement ({status:?}); tributary up printed:\n{}\nstderr:\n{stderr}",
        seen.join("\n")
    );
}

/// Sends SIGINT, as ctrl-c does, and waits for a clean exit.
fn interrupt(child: &mut Child) {
    let status = common::signal_and_wait(child, "INT", 60);
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
}

/// The processes whose command line mentions `dir`.
fn processes_under(dir: &Path) -> String {
    let out = Command::new("pgrep")
        .args(["-af", &dir.display().to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The URL of the NATS server `tributary up` started with `data_dir`, as it wrote it.
fn nats_url(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("nats/url"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Connects to the NATS server `tributary up` started with `data_dir` as `admin`, with the
/// password it made, as the other `tributary` commands do.
async fn admin(data_dir: &Path) -> async_nats::Client {
    let password = std::fs::read_to_string(data_dir.join("secrets/nats/admin")).unwrap();
    async_nats::ConnectOptions::with_user_and_password("admin".into(), password.trim().into())
        .custom_inbox_prefix("_INBOX_admin")
        .connect(nats_url(data_dir))
        .await
        .unwrap()
}

async fn search(client: &async_nats::Client, q: &str) -> SearchResults {
    let mut query = SearchQuery::from_params(&Default::default()).unwrap();
    query.q = q.to_owned();
    // Asked again for up to 30 s while no answer comes (a fresh connection's inbox interest
    // may reach the server a moment after it connects, on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match client
            .request("search.query", serde_json::to_vec(&query).unwrap().into())
            .await
        {
            Ok(reply) => break reply,
            Err(e) if Instant::now() < deadline => {
                eprintln!("search.query not answered yet: {e}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("search.query was not answered: {e}"),
        }
    };
    // Replies are `{"ok": …}` or `{"error": …}`.
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    serde_json::from_value(reply["ok"].clone()).unwrap_or_else(|e| panic!("{e}: {reply}"))
}

/// What a local user without the passwords gets from the NATS server `tributary up` started
/// with `data_dir`, and what `admin` gets when it asks for instances' secrets: both refused.
async fn assert_secrets_out_of_reach(data_dir: &Path) {
    let anonymous = async_nats::ConnectOptions::new()
        .connect(nats_url(data_dir))
        .await;
    let refused = anonymous.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("authorization violation"),
        "an anonymous client must be refused, got {refused:?}"
    );
    let guessed = async_nats::ConnectOptions::with_user_and_password(
        "plugin-manager".into(),
        "password".into(),
    )
    .connect(nats_url(data_dir))
    .await;
    assert!(guessed.is_err(), "a guessed password must be refused");
    // A service given that password says it was refused, naming the user, not that NATS
    // cannot be reached.
    let mut config = tributary_kit::config::Config::defaults().unwrap().nats;
    config.url = nats_url(data_dir);
    config.user = "plugin-manager".into();
    config.password = "password".to_owned().into();
    let refused = tributary_kit::nats::connect(&config, "guess")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("refused user `plugin-manager`") && !refused.contains("cannot reach"),
        "{refused}"
    );
    let admin = admin(data_dir).await;
    for subject in ["plugins.runtime.connector", "plugins.token.connector"] {
        let body = serde_json::to_vec(&serde_json::json!({"instance_id": "demo"})).unwrap();
        let asked =
            tokio::time::timeout(Duration::from_secs(5), admin.request(subject, body.into())).await;
        assert!(
            !matches!(asked, Ok(Ok(_))),
            "admin must not be answered on {subject}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = data_dir.join("secrets/nats");
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

/// A connection to the private cluster `tributary up` runs with `data_dir`, as `user`.
async fn private_database(data_dir: &Path, user: &str, password: &str) -> sqlx::PgConnection {
    use sqlx::ConnectOptions;
    // postmaster.pid's fourth line is the port the server listens on.
    let pid = std::fs::read_to_string(data_dir.join("postgres/cluster/postmaster.pid")).unwrap();
    let port: u16 = pid.lines().nth(3).unwrap().trim().parse().unwrap();
    sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username(user)
        .password(password)
        .database("tributary")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting as {user}: {e}"))
}

/// Under `tributary up`'s own PostgreSQL each service connects as its own role, as in a
/// compose deployment: the channel service's, read from where `up` keeps it, reads no secret,
/// rewrites no instance and runs no program, as a compromised channel service would try.
async fn assert_each_service_is_its_own_database_role(data_dir: &Path) {
    let secret = |file: &str| std::fs::read_to_string(data_dir.join(file)).unwrap();
    let owner = secret("postgres/password");
    let mut as_owner = private_database(data_dir, "tributary", owner.trim()).await;
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = 'tributary' \
         AND pid <> pg_backend_pid() ORDER BY 1",
    )
    .fetch_all(&mut as_owner)
    .await
    .unwrap();
    // The search service holds no connection once it has checked the schema; the others do.
    let services = [
        "tributary_channel",
        "tributary_connector",
        "tributary_etl",
        "tributary_plugin_manager",
        "tributary_search",
    ];
    assert!(
        users.iter().all(|user| services.contains(&user.as_str()))
            && services[..4].iter().all(|s| users.iter().any(|u| u == s)),
        "each service connects as its own role, none as the owner: {users:?}"
    );
    let channel = secret("secrets/postgres/channel");
    let mut as_channel = private_database(data_dir, "tributary_channel", channel.trim()).await;
    for attack in [
        "SELECT * FROM plugin_secret",
        "UPDATE plugin_instance SET config = '{}'",
        "COPY (SELECT 1) TO PROGRAM 'true'",
    ] {
        // 42501: insufficient_privilege.
        let refused = sqlx::query(attack).execute(&mut as_channel).await;
        let code = refused.err().and_then(|e| {
            e.as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.into_owned())
        });
        assert_eq!(
            code.as_deref(),
            Some("42501"),
            "the channel role must not: {attack}"
        );
    }
}

#[tokio::test]
async fn up_with_its_own_servers_and_demo_makes_the_sample_searchable_and_ctrl_c_stops_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let path_var = std::env::var("PATH").unwrap_or_default();

    let mut up = spawn_up(&data_dir, &["--demo"], &path_var);
    let (count, suggested) = wait_for_demo(&mut up);
    assert_eq!(count, 28, "every sample entry is searchable");
    assert!(
        suggested.contains(&format!("TRIBUTARY__DATA_DIR={}", data_dir.display())),
        "{suggested}"
    );
    assert!(!suggested.contains("NATS__URL"), "{suggested}");
    assert_secrets_out_of_reach(&data_dir).await;
    // The command the announcement suggests finds the server and its password by itself.
    let cli = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["search", "loyalty"])
        .env_clear()
        .env("PATH", &path_var)
        .env("TRIBUTARY__DATA_DIR", &data_dir)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success() && printed.contains("loyalty"),
        "{printed}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let client = admin(&data_dir).await;
    assert!(
        data_dir.join("postgres/cluster/PG_VERSION").exists(),
        "the private cluster lives under the data directory"
    );
    assert!(data_dir.join("nats/jetstream").is_dir());
    // What the announcement suggests finds the sample, across entity types.
    let loyalty = search(&client, "loyalty").await;
    let types: std::collections::BTreeSet<String> = loyalty
        .hits
        .iter()
        .map(|h| h.entity_type.to_string())
        .collect();
    assert!(
        ["document", "message", "calendar_event"]
            .iter()
            .all(|t| types.contains(*t)),
        "{types:?}"
    );
    let priya = search(&client, "priya").await;
    assert!(priya.hits.iter().any(|h| h.title == "Priya Nair"));
    assert_each_service_is_its_own_database_role(&data_dir).await;
    interrupt(&mut up);
    assert_eq!(
        processes_under(dir.path()),
        "",
        "NATS or PostgreSQL outlived tributary up"
    );

    // A second start uses the same cluster (its password kept) and finds the demo instance
    // installed. With the search index deleted meanwhile, a sync sends nothing new, so the
    // index is rebuilt from the data PostgreSQL kept.
    std::fs::remove_dir_all(data_dir.join("search")).unwrap();
    let mut again = spawn_up(&data_dir, &["--demo"], &path_var);
    let (count, _) = wait_for_demo(&mut again);
    assert_eq!(count, 28);
    let client = admin(&data_dir).await;
    assert_eq!(search(&client, "loyalty").await.total, loyalty.total);
    interrupt(&mut again);
    assert_eq!(processes_under(dir.path()), "");
}

#[tokio::test]
async fn local_nats_and_postgres_keep_their_data_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = LocalNats::start(dir.path(), 0).await.unwrap();
    let mut postgres = LocalPostgres::start(dir.path(), 0).await.unwrap();

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "KEPT".into(),
        subjects: vec!["kept.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("kept.one", "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let options = {
        use secrecy::ExposeSecret;
        sqlx::postgres::PgConnectOptions::new()
            .host(postgres.host())
            .port(postgres.port())
            .username(postgres.user())
            .password(postgres.password().expose_secret())
            .database("postgres")
    };
    let pool = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    // Only the password gets in.
    let wrong = sqlx::postgres::PgConnectOptions::new()
        .host(postgres.host())
        .port(postgres.port())
        .username(postgres.user())
        .password("wrong")
        .database("postgres");
    assert!(sqlx::PgPool::connect_with(wrong).await.is_err());

    nats.restart().await.unwrap();
    postgres.restart().await.unwrap();

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("KEPT").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let pool = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    let kept: String = sqlx::query_scalar("SELECT v FROM kept")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, "hello");
    pool.close().await;

    nats.stop().await.unwrap();
    postgres.stop().await.unwrap();
    assert_eq!(processes_under(dir.path()), "");
}

#[tokio::test]
async fn up_names_what_to_install_when_nats_server_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let empty_path = dir.path().join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let mut up = spawn_up(
        &dir.path().join("data"),
        &[],
        &empty_path.display().to_string(),
    );
    let status = up.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(up.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("nats-server was not found on the PATH")
            && stderr.contains("apt install nats-server")
            && stderr.contains("nats.url"),
        "{stderr}"
    );
}

/// A directory under `dir` holding only an `apt-get` that installs nothing and appends its
/// arguments to the file returned beside it.
fn stand_in_apt_get(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.join("apt-get.calls");
    let apt_get = bin.join("apt-get");
    std::fs::write(
        &apt_get,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &apt_get,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    (bin, calls)
}

#[tokio::test]
async fn up_installs_a_missing_nats_server_with_apt_get_or_prints_the_command() {
    // Proves the first `up` on a fresh Debian machine installs what it lacks, logged, and says
    // the one command when it cannot. The PATH holds only a stand-in `apt-get` that records
    // its arguments (and installs nothing), so nothing is installed on this machine.
    let dir = tempfile::tempdir().unwrap();
    let (bin, calls) = stand_in_apt_get(dir.path());
    let root = nix::unistd::geteuid().is_root();

    // At `info`, where a person sees the installation step logged.
    let mut up = Up(common::up_command(bin.as_os_str())
        .arg("--own-servers")
        .env("TRIBUTARY__DATA_DIR", dir.path().join("data"))
        .env("TRIBUTARY__TELEMETRY__LOG_FILTER", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let status = up.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(up.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(up.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let recorded = std::fs::read_to_string(&calls).unwrap_or_default();

    // The stand-in installed nothing, so `up` still stops, naming the program.
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nats-server was not found"), "{stderr}");
    if root {
        assert_eq!(recorded, "update\ninstall -y nats-server\n", "{stderr}");
        assert!(
            stdout.contains("Installing nats-server with apt-get"),
            "{stdout}"
        );
    } else {
        assert_eq!(recorded, "", "{stderr}");
        assert!(
            stderr.contains("sudo apt-get update && sudo apt-get install -y nats-server"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn up_with_no_install_never_runs_the_package_manager() {
    // Proves `--no-install` leaves the machine alone and only says what to install.
    let dir = tempfile::tempdir().unwrap();
    let (bin, calls) = stand_in_apt_get(dir.path());

    let mut up = spawn_up(
        &dir.path().join("data"),
        &["--no-install"],
        &bin.display().to_string(),
    );
    let status = up.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(up.stderr.as_mut().unwrap(), &mut stderr).unwrap();

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!calls.exists(), "apt-get ran: {stderr}");
    assert!(stderr.contains("apt install nats-server"), "{stderr}");
}

#[tokio::test]
async fn up_never_uses_a_nats_server_that_lets_anyone_in() {
    // Proves that a server squatting on the default port, or the machine's own without
    // authentication (as on this machine and in CI), is not adopted: every local user could
    // read secrets through it. `up` starts its own, with passwords, on a free port.
    assert_eq!(
        tributary::local::probe_nats(4222),
        tributary::local::NatsProbe::Anonymous,
        "this test needs the machine's NATS on 127.0.0.1:4222 without authentication"
    );
    let env = tributary_kit::testing::TestEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut up = Up(
        common::up_command(std::env::var_os("PATH").unwrap_or_default().as_os_str())
            .env("TRIBUTARY__DATA_DIR", &data_dir)
            .env("TRIBUTARY__DATABASE__HOST", "127.0.0.1")
            .env("TRIBUTARY__DATABASE__NAME", &env.database)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while !data_dir.join("nats/url").exists() {
        assert!(up.try_wait().unwrap().is_none(), "tributary up exited");
        assert!(Instant::now() < deadline, "no NATS URL written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let url = nats_url(&data_dir);
    assert_ne!(
        url, "nats://127.0.0.1:4222",
        "the anonymous server was adopted"
    );
    // The mesh runs on it: admin is answered by the search service.
    let client = admin(&data_dir).await;
    let mut query = SearchQuery::from_params(&Default::default()).unwrap();
    query.q = "anything".into();
    loop {
        let asked = client
            .request("search.query", serde_json::to_vec(&query).unwrap().into())
            .await;
        if asked.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the search service never answered"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_secrets_out_of_reach(&data_dir).await;
    interrupt(&mut up);
    assert!(
        !data_dir.join("nats/url").exists(),
        "the URL outlived its server"
    );
    assert_eq!(processes_under(dir.path()), "");
}

#[tokio::test]
async fn up_with_a_subject_prefix_and_its_own_nats_stops_naming_the_key() {
    // The embedded server's permissions are for unprefixed subjects: a prefix would have
    // every service refused, so `up` says so before starting anything.
    let dir = tempfile::tempdir().unwrap();
    let output = common::up_command(std::env::var_os("PATH").unwrap_or_default().as_os_str())
        .arg("--own-servers")
        .env("TRIBUTARY__DATA_DIR", dir.path().join("data"))
        .env("TRIBUTARY__NATS__SUBJECT_PREFIX", "mine")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nats.subject_prefix"), "{stderr}");
    assert_eq!(processes_under(dir.path()), "");
}
