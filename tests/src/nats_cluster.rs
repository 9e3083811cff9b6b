//! A NATS cluster on loopback for one test: several `nats-server` processes with JetStream,
//! routed to each other, each with its own store under the test's directory and free ports,
//! and without users, as the e2e stack runs against the machine's server. A test runs the
//! stack on it with `nats.replicas` set, and kills a node to see the cluster carry on.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use serde_json::Value;

use crate::process::{command_dying_with_parent, log_file, tail};

/// The name of the cluster every node joins.
const CLUSTER_NAME: &str = "tributary-e2e";

/// How long the nodes get to answer and elect a JetStream meta leader.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One `nats-server` of the cluster.
#[derive(Debug)]
struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    log: PathBuf,
    child: Option<Child>,
}

/// Several `nats-server` processes forming one JetStream cluster on 127.0.0.1. Dropping it
/// kills every node.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
    http: reqwest::Client,
}

impl NatsCluster {
    /// Starts `size` nodes (`n1`, `n2`, …) under `dir`, each with its configuration file, store
    /// and log in `dir/<name>`, routes to all the others and free client, cluster and
    /// monitoring ports; returns once every node answers and all agree on a JetStream meta
    /// leader. `nats-server` is looked up on the `PATH`, then in `/usr/sbin`.
    pub async fn start(dir: &Path, size: usize) -> Self {
        let program = nats_server();
        let ports: Vec<(u16, u16, u16)> = (0..size)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("\"nats-route://127.0.0.1:{cluster}\""))
            .collect();
        let mut nodes = Vec::with_capacity(size);
        for (i, (client_port, cluster_port, monitor_port)) in ports.into_iter().enumerate() {
            let name = format!("n{}", i + 1);
            let home = dir.join(&name);
            std::fs::create_dir_all(home.join("jetstream"))
                .unwrap_or_else(|e| panic!("cannot make {}: {e}", home.display()));
            // Anonymous clients, as the machine's server the other e2e tests use: the stack's
            // services connect without a user.
            let conf = format!(
                "server_name: {name}\n\
                 listen: \"127.0.0.1:{client_port}\"\n\
                 http: \"127.0.0.1:{monitor_port}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  max_file_store: 2G\n  max_memory_store: 64M\n}}\n\
                 cluster {{\n  name: {CLUSTER_NAME}\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{routes}]\n}}\n",
                store = home.join("jetstream").display(),
                routes = routes.join(", "),
            );
            let conf_path = home.join("nats-server.conf");
            std::fs::write(&conf_path, conf)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf_path.display()));
            let log = home.join("server.log");
            let (out, err) = log_file(&log);
            let child = command_dying_with_parent(&program)
                .arg("-c")
                .arg(&conf_path)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
            nodes.push(Node {
                name,
                client_port,
                monitor_port,
                log,
                child: Some(child),
            });
        }
        let cluster = Self {
            nodes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_else(|e| panic!("an HTTP client: {e}")),
        };
        cluster.wait_meta_leader(START_TIMEOUT).await;
        cluster
    }

    /// Every running node's client URL, separated by commas: what `nats.url` takes.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URLs of the nodes still running, separated by commas: to watch the
    /// cluster from where a killed node cannot hold a request up.
    pub fn running_url(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| format!("nats://127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The names of the nodes (`n1`, …), running or not.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Waits until every running node names the same JetStream meta leader (from its
    /// monitoring endpoint's `/jsz`), and returns that leader's name.
    pub async fn wait_meta_leader(&self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            for node in self.nodes.iter().filter(|n| n.child.is_some()) {
                let url = format!("http://127.0.0.1:{}/jsz", node.monitor_port);
                let leader =
                    match self.http.get(&url).send().await {
                        Ok(response) => response.json::<Value>().await.ok().and_then(|jsz| {
                            jsz["meta_cluster"]["leader"].as_str().map(str::to_owned)
                        }),
                        Err(_) => None,
                    };
                leaders.push(leader.unwrap_or_default());
            }
            if let Some(first) = leaders.first().filter(|l| !l.is_empty()) {
                if leaders.iter().all(|l| l == first) {
                    return first.clone();
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "the NATS cluster has no JetStream meta leader all agree on after {within:?} (each node says {leaders:?}); logs:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs the node `name`: no shutdown, nothing flushed. Panics when it is not a running
    /// node of the cluster.
    pub fn kill(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("{name} is not a node of the cluster"));
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("{name} does not run"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "----- {} ({}) -----\n{}",
                    n.name,
                    n.log.display(),
                    tail(&n.log, 30)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Who leads a replicated stream or consumer and who follows it, as JetStream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The leader's server name, when there is one.
    pub leader: Option<String>,
    /// The followers' server names, with whether each is current.
    pub followers: Vec<(String, bool)>,
}

impl Placement {
    /// Leader and followers together.
    pub fn replicas(&self) -> usize {
        usize::from(self.leader.is_some()) + self.followers.len()
    }

    fn of(cluster: Option<&jetstream::stream::ClusterInfo>) -> Self {
        Self {
            leader: cluster.and_then(|c| c.leader.clone()),
            followers: cluster
                .map(|c| {
                    c.replicas
                        .iter()
                        .map(|p| (p.name.clone(), p.current && !p.offline))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Where `stream` is placed (`$JS.API.STREAM.INFO.<stream>`'s `cluster`), or why it cannot be
/// asked now.
pub async fn stream_placement(js: &jetstream::Context, stream: &str) -> Result<Placement, String> {
    let mut found = js.get_stream(stream).await.map_err(|e| e.to_string())?;
    let info = found.info().await.map_err(|e| e.to_string())?;
    Ok(Placement::of(info.cluster.as_ref()))
}

/// Where the durable consumer `consumer` of `stream` is placed, or why it cannot be asked now.
pub async fn consumer_placement(
    js: &jetstream::Context,
    stream: &str,
    consumer: &str,
) -> Result<Placement, String> {
    let mut found: jetstream::consumer::Consumer<jetstream::consumer::pull::Config> = js
        .get_consumer_from_stream(consumer, stream)
        .await
        .map_err(|e| e.to_string())?;
    let info = found.info().await.map_err(|e| e.to_string())?;
    Ok(Placement::of(info.cluster.as_ref()))
}

/// `nats-server` on the `PATH`, or in `/usr/sbin` where Debian puts it.
fn nats_server() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("nats-server"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("the cluster drill runs `nats-server`, which is neither on the PATH nor in /usr/sbin (Debian and Ubuntu: `apt install nats-server`)")
        })
}

/// A TCP port nothing listens on right now on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}
