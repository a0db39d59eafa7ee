//! Who may connect and call: TLS, tokens, the auth layer, reloading their files, the
//! listener with its connection caps and deadlines, and the message-size layer.

pub mod auth;
pub mod auth_deadline;
pub mod connection_caps;
pub mod credentials;
pub mod first_bytes;
pub mod listener;
pub mod message_size;
pub mod node_identity;
pub mod plaintext_on_tls;
pub mod reload;
pub mod revocable;
pub mod tls;
pub mod tokens;
