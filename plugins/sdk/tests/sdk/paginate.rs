use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tributary_plugin_sdk::testing::{Canned, FixtureServer, TestContext};
use tributary_plugin_sdk::{paginate, Page, PluginContext, PluginError};

use crate::LOCAL;

/// The page shape the fixture serves: `{ "items": [...], "next": "/page/2" | null }`.
#[derive(Deserialize)]
struct ApiPage {
    items: Vec<u32>,
    next: Option<String>,
}

pub(crate) fn serve_three_pages(server: &FixtureServer) {
    server.respond(
        "/page/1",
        [Canned::json(
            200,
            json!({ "items": [1, 2], "next": "/page/2" }),
        )],
    );
    server.respond(
        "/page/2",
        [Canned::json(
            200,
            json!({ "items": [3, 4], "next": "/page/3" }),
        )],
    );
    server.respond(
        "/page/3",
        [Canned::json(200, json!({ "items": [5], "next": null }))],
    );
}

pub(crate) async fn fetch_page(
    ctx: PluginContext,
    base: String,
    path: String,
) -> Result<Page<u32, String>, PluginError> {
    let page: ApiPage = ctx.http().get(&format!("{base}{path}")).send_json().await?;
    Ok(Page {
        items: page.items,
        next: page.next,
    })
}

#[tokio::test]
async fn paginate_follows_the_cursor_chain_one_page_at_a_time() {
    let server = FixtureServer::start().await.unwrap();
    serve_three_pages(&server);
    let test = TestContext::new(&[LOCAL], json!({}));
    let (ctx, base) = (test.ctx(), server.base_url());

    let items = paginate("/page/1".to_owned(), move |path| {
        fetch_page(ctx.clone(), base.clone(), path)
    });
    let mut items = std::pin::pin!(items);

    // Nothing is fetched until the consumer asks.
    assert!(server.requests().is_empty());
    assert_eq!(items.next().await.unwrap().unwrap(), 1);
    assert_eq!(items.next().await.unwrap().unwrap(), 2);
    // Page 1 is used up, and page 2 has not been asked for.
    assert!(server.requests_to("/page/2").is_empty());
    assert_eq!(items.next().await.unwrap().unwrap(), 3);
    assert_eq!(server.requests_to("/page/2").len(), 1);
    assert!(server.requests_to("/page/3").is_empty());

    let rest: Vec<u32> = items.map(Result::unwrap).collect().await;
    assert_eq!(rest, [4, 5]);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/page/1", "/page/2", "/page/3"]);
}

#[tokio::test]
async fn paginate_stops_at_the_first_error() {
    let server = FixtureServer::start().await.unwrap();
    server.respond(
        "/page/1",
        [Canned::json(
            200,
            json!({ "items": [1], "next": "/page/2" }),
        )],
    );
    server.respond("/page/2", [Canned::status(400)]);
    let test = TestContext::new(&[LOCAL], json!({}));
    let (ctx, base) = (test.ctx(), server.base_url());

    let results: Vec<Result<u32, PluginError>> = paginate("/page/1".to_owned(), move |path| {
        fetch_page(ctx.clone(), base.clone(), path)
    })
    .collect()
    .await;

    assert_eq!(results.len(), 2);
    assert!(matches!(results[0], Ok(1)));
    assert!(matches!(
        results[1],
        Err(PluginError::Http { status: 400, .. })
    ));
}
