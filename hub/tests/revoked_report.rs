//! A Report stream whose token is revoked stops being read at once: a client that keeps
//! sending on it after the hub ended it with UNAUTHENTICATED gets nothing more stored.

mod common;

use std::time::Duration;

use common::{Hub, scratch};
use hub_client::proto::v1::{
    Event, EventBatch, Hello, ListTappersRequest, ReportRequest, report_request::Msg,
    report_response,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request};

const REPORT: &str = "report-token-aaaaaaaaaaaaaaaa";
const ADMIN: &str = "admin-token-cccccccccccccccccc";

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("an ASCII header"),
    );
    request
}

fn batch(seq: u64) -> ReportRequest {
    ReportRequest {
        msg: Some(Msg::Events(EventBatch {
            events: vec![Event {
                seq,
                ts: Some(hub_client::proto::Timestamp::default()),
                errno: 24,
                comm: "revoked".into(),
                ..Default::default()
            }],
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_report_stream_stores_nothing_more() {
    let dir = scratch("revoked-report");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("report {REPORT}\nadmin {ADMIN}\n")).unwrap();
    let tokens_flag = tokens.to_str().unwrap();
    let hub = Hub::start(
        &dir,
        ":memory:",
        &["--tokens", tokens_flag, "--reload-interval", "100ms"],
    );
    let (tx, rx) = mpsc::channel(16);
    let hello = ReportRequest {
        msg: Some(Msg::Hello(Hello {
            node: "revoked-node".into(),
            instance_id: "i-1".into(),
            ..Default::default()
        })),
    };
    tx.send(hello).await.unwrap();
    tx.send(batch(1)).await.unwrap();
    let mut acks = hub
        .client()
        .await
        .report(with_token(ReceiverStream::new(rx), REPORT))
        .await
        .expect("the report token is valid")
        .into_inner();
    let ack_of = |r: hub_client::proto::v1::ReportResponse| match r.msg {
        Some(report_response::Msg::Ack(a)) => a.acked_seq,
        other => panic!("not an ack: {other:?}"),
    };
    assert_eq!(ack_of(acks.message().await.unwrap().unwrap()), 0);
    assert_eq!(ack_of(acks.message().await.unwrap().unwrap()), 1);

    // The report token is revoked (the file replaced by a rename).
    std::fs::write(dir.join("tokens.new"), format!("admin {ADMIN}\n")).unwrap();
    std::fs::rename(dir.join("tokens.new"), &tokens).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(20), acks.message())
        .await
        .expect("the stream ends after the revocation");
    let status = ended.expect_err("the stream ends with a status");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // The client keeps sending on the stream it still holds; the hub reads none of it.
    for seq in 2..=4 {
        let _ = tx.send(batch(seq)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let listed = hub
        .client()
        .await
        .list_tappers(with_token(ListTappersRequest::default(), ADMIN))
        .await
        .unwrap()
        .into_inner();
    let received: Vec<_> = listed
        .tappers
        .iter()
        .map(|t| (t.node.as_str(), t.events_received))
        .collect();
    assert_eq!(received, [("revoked-node", 1)]);
}
