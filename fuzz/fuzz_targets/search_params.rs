//! The query string of `GET /search`, read as the search service reads it: decoded into
//! parameters (the last of a repeated name wins, as axum's `Query` into a map does), then
//! into a query, then validated.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tributary_proto::requests::search::SearchQuery;
use tributary_proto::requests::search::MAX_RESULT_WINDOW;

fuzz_target!(|data: &[u8]| {
    let params: HashMap<String, String> = url::form_urlencoded::parse(data).into_owned().collect();
    if let Ok(query) = SearchQuery::from_params(&params) {
        // What passed must stay valid, and fit the result window the index can hold.
        assert!(query.validate().is_ok());
        assert!(query.offset.saturating_add(query.limit) <= MAX_RESULT_WINDOW);
    }
});
