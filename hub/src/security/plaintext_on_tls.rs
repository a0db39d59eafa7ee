//! A plaintext client on the TLS port is told so: a TLS ClientHello starts with the byte
//! 0x16; anything else gets an HTTP/2 GOAWAY (once its first request is on the way, so
//! that the request fails with the GOAWAY's text rather than with a closed connection) or
//! an HTTP/1 `400` whose text says to use https://, and the connection is closed
//! gracefully so the client reads it.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::security::first_bytes::peek_until;

/// The first byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;
/// The start of the HTTP/2 client preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
/// An HTTP/2 SETTINGS frame with no settings: the server's preface.
const H2_EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0];
/// How long the client may take to read the answer and close its side.
const LINGER: Duration = Duration::from_secs(1);
/// Most bytes read (and dropped) from the client while it reads the answer.
const DRAIN_BYTES: usize = 64 << 10;

/// What the first bytes of a connection on the TLS port are.
pub enum FirstBytes {
    /// A TLS handshake.
    Tls,
    /// Plaintext (these bytes, as peeked), or nothing at all before the client closed.
    Plain(Vec<u8>),
}

/// Peeks at the first bytes without consuming them: one byte tells TLS; for plaintext, up
/// to the length of the HTTP/2 preface, to tell HTTP/2 from HTTP/1.
pub async fn peek(stream: &TcpStream) -> FirstBytes {
    let mut buf = [0u8; H2_PREFACE.len()];
    let told = peek_until(stream, &mut buf, |first| {
        if first[0] == TLS_HANDSHAKE {
            Some(FirstBytes::Tls)
        } else if first.len() == H2_PREFACE.len() || !H2_PREFACE.starts_with(first) {
            Some(FirstBytes::Plain(first.to_vec()))
        } else {
            // Part of what may be the HTTP/2 preface.
            None
        }
    });
    told.await.unwrap_or(FirstBytes::Plain(Vec::new()))
}

/// The text a plaintext client gets.
pub fn advice(local: SocketAddr) -> String {
    format!("this hub speaks TLS: use https://{local}")
}

/// Answers a plaintext client whose first bytes were `first`, then closes gracefully: its
/// side is drained (bounded) so that the close sends no reset that would lose the answer.
pub async fn answer(mut stream: TcpStream, first: &[u8], local: SocketAddr) {
    let text = advice(local);
    let reply = if first.starts_with(H2_PREFACE) {
        if stream.write_all(&H2_EMPTY_SETTINGS).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(LINGER, first_request(&mut stream)).await;
        goaway(&text)
    } else {
        format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{text}\n",
            text.len() + 1
        )
        .into_bytes()
    };
    if stream.write_all(&reply).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        while total < DRAIN_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads the client's HTTP/2 preface and frames until its first HEADERS frame (a request)
/// arrived, or it closed, or it sent more than [`DRAIN_BYTES`].
async fn first_request(stream: &mut TcpStream) {
    const HEADERS: u8 = 0x1;
    let mut preface = [0u8; 24];
    if stream.read_exact(&mut preface).await.is_err() {
        return;
    }
    let mut total = 0;
    let mut header = [0u8; 9];
    while total < DRAIN_BYTES {
        if stream.read_exact(&mut header).await.is_err() || header[3] == HEADERS {
            return;
        }
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len.min(DRAIN_BYTES)];
        if len > DRAIN_BYTES || stream.read_exact(&mut payload).await.is_err() {
            return;
        }
        total += header.len() + len;
    }
}

/// A GOAWAY frame on stream 0: no stream processed, PROTOCOL_ERROR, `debug` as its debug
/// data (which HTTP/2 clients show in their error).
fn goaway(debug: &str) -> Vec<u8> {
    const PROTOCOL_ERROR: u32 = 0x1;
    let len = 8 + debug.len();
    let mut frame = Vec::with_capacity(9 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    frame.extend_from_slice(&[0x7, 0]); // type GOAWAY, no flags
    frame.extend_from_slice(&0u32.to_be_bytes()); // stream 0
    frame.extend_from_slice(&0u32.to_be_bytes()); // last stream id
    frame.extend_from_slice(&PROTOCOL_ERROR.to_be_bytes());
    frame.extend_from_slice(debug.as_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaway_frame_layout() {
        let frame = goaway("hi");
        assert_eq!(frame.len(), 9 + 8 + 2);
        assert_eq!(&frame[..9], &[0, 0, 10, 7, 0, 0, 0, 0, 0]);
        assert_eq!(&frame[13..17], &[0, 0, 0, 1]);
        assert_eq!(&frame[17..], b"hi");
    }
}
