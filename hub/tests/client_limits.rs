//! A query client decodes responses up to the limit it was configured with: a GetStats
//! response over 4 MiB (tonic's default) arrives whole with the default 64 MiB, and a client
//! configured for 1 MiB refuses it.

mod common;

use std::time::Duration;

use common::{Hub, scratch};
use hub_client::{
    ClientConfig,
    proto::v1::{
        Event, EventBatch, GetStatsRequest, GroupBy, Hello, ReportRequest, report_request::Msg,
        report_response,
    },
};
use prost::Message;
use tonic::Code;

const EVENTS: u64 = 60_000;
const PER_BATCH: u64 = 10_000;

/// Reports EVENTS events with distinct 64-byte command names and waits for the last ack.
async fn report_many(hub: &Hub) {
    let batches = (0..EVENTS / PER_BATCH).map(|b| ReportRequest {
        msg: Some(Msg::Events(EventBatch {
            events: (1..=PER_BATCH)
                .map(|i| {
                    let seq = b * PER_BATCH + i;
                    Event {
                        seq,
                        ts: Some(hub_client::proto::Timestamp::default()),
                        errno: 24,
                        comm: format!("{seq:064}"),
                        cgroup_id: u64::MAX - seq,
                        ..Default::default()
                    }
                })
                .collect(),
        })),
    });
    let hello = ReportRequest {
        msg: Some(Msg::Hello(Hello {
            node: "big-node".into(),
            instance_id: "big-1".into(),
            ..Default::default()
        })),
    };
    let mut acks = hub
        .client()
        .await
        .report(tokio_stream::iter(std::iter::once(hello).chain(batches)))
        .await
        .unwrap()
        .into_inner();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let msg = acks.message().await.unwrap().expect("stream open").msg;
            if let Some(report_response::Msg::Ack(a)) = msg
                && a.acked_seq == EVENTS
            {
                return;
            }
        }
    })
    .await
    .expect("all events acked within 120s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_decode_up_to_their_own_limit() {
    let dir = scratch("client-limits");
    let hub = Hub::start(&dir, ":memory:", &[]);
    report_many(&hub).await;
    let req = GetStatsRequest {
        group_by: vec![GroupBy::Comm as i32, GroupBy::Cgroup as i32],
        ..Default::default()
    };

    let stats = hub
        .client()
        .await
        .get_stats(req.clone())
        .await
        .expect("the default client takes a large response")
        .into_inner();
    assert_eq!(stats.rows.len() as u64, EVENTS);
    assert!(
        stats.encoded_len() > 4 * 1024 * 1024,
        "{} bytes",
        stats.encoded_len()
    );

    let cfg = ClientConfig {
        max_decoding_message_bytes: 1024 * 1024,
        ..Default::default()
    };
    let err = hub_client::connect_with(&hub.url(), &cfg)
        .await
        .unwrap()
        .get_stats(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("1048576"), "{err:?}");
}
