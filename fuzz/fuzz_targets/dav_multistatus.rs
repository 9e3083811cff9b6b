//! A WebDAV multistatus answer (PROPFIND, sync-collection, multiget) as a DAV server sends
//! it: the XML read into elements, then the hrefs, statuses and properties a sync reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        tributary_connector_dav::fuzzing::read_multistatus(text);
    }
});
