//! An errno alias means its canonical number in a Subscribe filter: `ENOTSUP` selects the
//! same events as `EOPNOTSUPP` and `95`, through the real `hub-client watch` as through gRPC.

mod common;

use std::time::Duration;

use common::{Hub, hub_client, scratch};
use hub_client::proto::v1::{Event, SubscribeRequest, subscribe_request::Since};

const EOPNOTSUPP: i32 = 95;
const EMFILE: i32 = 24;

fn event(errno: i32) -> Event {
    Event {
        ts: Some(hub_client::proto::timestamp_from_unix_nanos(
            1_700_000_000_000_000_000,
        )),
        pid: 42,
        comm: "alias".into(),
        errno,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enotsup_filters_like_eopnotsupp() {
    let dir = scratch("errno-alias");
    let hub = Hub::start(&dir, ":memory:", &[]);
    let reporter =
        hub_client::Reporter::spawn(hub_client::ReporterConfig::new(hub.url(), "alias-node"))
            .unwrap();
    for errno in [EOPNOTSUPP, EMFILE, EOPNOTSUPP, EMFILE, EOPNOTSUPP] {
        reporter.send_event(event(errno));
    }
    assert!(reporter.flush(Duration::from_secs(20)).await);

    let mut client = hub.client().await;
    let mut stream = client
        .subscribe(SubscribeRequest {
            errno: vec!["ENOTSUP".into()],
            since: Some(Since::SinceHubSeq(0)),
            follow: false,
            ..Default::default()
        })
        .await
        .expect("the hub accepts ENOTSUP")
        .into_inner();
    let mut via_grpc = 0;
    while let Some(item) = stream.message().await.unwrap() {
        if let Some(hub_client::proto::v1::subscribe_response::Item::Event(e)) = item.item {
            assert_eq!(e.errno, EOPNOTSUPP);
            via_grpc += 1;
        }
    }
    assert_eq!(via_grpc, 3);

    let url = hub.url();
    let watch = |errno: &str| {
        let out = hub_client(&[
            "--hub",
            &url,
            "watch",
            "--errno",
            errno,
            "--since-seq",
            "0",
            "--no-follow",
            "--json",
        ]);
        out.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("errno").is_some())
            .map(|v| (v["errno"].as_i64().unwrap(), v["seq"].as_u64().unwrap()))
            .collect::<Vec<_>>()
    };
    let alias = watch("ENOTSUP");
    assert_eq!(alias, vec![(95, 1), (95, 3), (95, 5)]);
    assert_eq!(watch("EOPNOTSUPP"), alias);
    assert_eq!(watch("95"), alias);
    reporter.shutdown(Duration::from_secs(1)).await;
}
