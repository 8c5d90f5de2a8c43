//! The graphql-ws frames a client sends, as the user-channel component parses them: any text
//! must give a message or a 4400 reason, never a panic, and a `subscribe` payload must give a
//! GraphQL request (a JSON object) or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../components/user-channel/src/protocol.rs"]
mod protocol;

use protocol::ClientMessage;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ClientMessage::Subscribe { request, .. }) = protocol::parse_client_message(&text) {
        assert!(protocol::is_json_object(&request), "a subscribe becomes a JSON request: {request}");
    }
    let _ = protocol::checked_errors(&text);
});
