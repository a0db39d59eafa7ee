//! Peeking at a connection's first bytes without consuming them, until they tell enough.

use std::time::Duration;

use tokio::net::TcpStream;

/// How long to wait for more bytes when those that arrived do not tell yet.
const MORE_BYTES_IN: Duration = Duration::from_millis(5);

/// Peeks into `buf` until `decide` can tell from what has arrived so far (never more than
/// `buf` holds); `None` when the client closes or fails first.
pub async fn peek_until<T>(
    stream: &TcpStream,
    buf: &mut [u8],
    decide: impl Fn(&[u8]) -> Option<T>,
) -> Option<T> {
    loop {
        match stream.peek(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => {
                if let Some(told) = decide(&buf[..n]) {
                    return Some(told);
                }
            }
        }
        // Part of what is needed: give the rest a moment instead of spinning on peek.
        tokio::time::sleep(MORE_BYTES_IN).await;
    }
}
