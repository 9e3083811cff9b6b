use std::time::Duration;

use serde_json::json;
use tributary_kit::testing::TcpProxy;

use crate::support::*;

#[tokio::test]
async fn the_database_going_away_mid_stream_loses_nothing_and_doubles_nothing() {
    let mut env = env().await;
    let mesh = Mesh::of(&env).await;
    let upstream = format!("{}:{}", env.config.database.host, env.config.database.port);
    let proxy = TcpProxy::start(upstream.parse().unwrap()).await.unwrap();
    env.config.database.host = "127.0.0.1".into();
    env.config.database.port = proxy.addr().port();
    let etl = RunningEtl::start(env.config.clone()).await;
    let pool = env.pool().await;
    let batch = |from: usize, to: usize| -> Vec<serde_json::Value> {
        (from..to)
            .map(|i| item("crm", "person", &format!("p{i}"), "2026-01-01T00:00:00Z",
                json!({"display_name": format!("P{i}"), "emails": [format!("p{i}@example.org")]})))
            .collect()
    };
    mesh.publish_items(&batch(0, 150)).await;
    eventually(30, "the first rows", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM person")
            .fetch_one(&pool)
            .await
            .ok()?;
        (n > 0).then_some(())
    })
    .await;

    proxy.cut();
    mesh.publish_items(&batch(150, 300)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();

    assert_people_stored_and_announced_once(&mesh, 300).await;
    etl.stop().await;
}
