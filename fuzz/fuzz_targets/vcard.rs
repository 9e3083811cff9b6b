//! A contact's vCard as a CardDAV server sends it, mapped into a person the way a sync maps
//! every member of an address book.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        tributary_connector_dav::fuzzing::map_vcard(text);
    }
});
