//! Global ids owned by this component: `Library.id` is `base64("Library:<userId>")`
//! (standard alphabet, padded), the same encoding the library uses for stories and tags.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The global id of a type name and a local id.
pub fn encode(type_name: &str, local_id: &str) -> String {
    STANDARD.encode(format!("{type_name}:{local_id}"))
}

/// The `(type name, local id)` a global id names, if it decodes.
pub fn decode(global_id: &str) -> Option<(String, String)> {
    let bytes = STANDARD.decode(global_id.as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (type_name, local_id) = text.split_once(':')?;
    Some((type_name.to_owned(), local_id.to_owned()))
}

/// The global id of a user's library.
pub fn library_id(user_id: &str) -> String {
    encode("Library", user_id)
}
