//! Bad input gets INVALID_ARGUMENT (or NOT_FOUND) naming the field, changes nothing, and the
//! hub keeps serving a reporter and a subscriber that were there all along.

mod common;

use std::time::Duration;

use common::InProcessHub;
use hub_client::proto::v1::{
    Event, EventBatch, GetStatsRequest, Hello, ListTappersRequest, ReportRequest, StackFrame,
    SubscribeRequest, report_request::Msg, subscribe_response::Item,
};
use prost::Message;
use tonic::Code;

fn hello(node: &str) -> ReportRequest {
    ReportRequest {
        msg: Some(Msg::Hello(Hello {
            node: node.into(),
            instance_id: "bad-1".into(),
            ..Default::default()
        })),
    }
}

fn good_event(seq: u64) -> Event {
    Event {
        seq,
        ts: Some(hub_client::proto::Timestamp::default()),
        errno: 24,
        ..Default::default()
    }
}

fn batch(events: Vec<Event>) -> ReportRequest {
    ReportRequest {
        msg: Some(Msg::Events(EventBatch { events })),
    }
}

/// Opens a Report stream with these messages; returns the status that ended it.
async fn report_status(hub: &InProcessHub, msgs: Vec<ReportRequest>) -> tonic::Status {
    let mut client = hub.client().await;
    let resp = client.report(tokio_stream::iter(msgs)).await;
    let mut stream = match resp {
        Ok(r) => r.into_inner(),
        Err(s) => return s,
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.message()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("stream ended without an error"),
            Ok(Err(s)) => return s,
            Err(_) => panic!("no error within 20s"),
        }
    }
}

fn assert_invalid(s: &tonic::Status, field: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with(field),
        "message should name {field:?}: {:?}",
        s.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_precisely_and_others_keep_being_served() {
    let hub = InProcessHub::start(|c| c.max_message_bytes = 65536).await;

    // A well-behaved subscriber and reporter, connected throughout.
    let mut sub_client = hub.client().await;
    let mut good_sub = sub_client
        .subscribe(SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut cfg = hub_client::ReporterConfig::new(hub.url(), "good-node");
    cfg.max_batch = 1;
    let reporter = hub_client::Reporter::spawn(cfg).unwrap();
    reporter.send_event(good_event(0));
    assert!(reporter.flush(Duration::from_secs(20)).await);

    let mut c = hub.client().await;
    let sub = |r: SubscribeRequest| {
        let mut c = c.clone();
        async move { c.subscribe(r).await.map(|_| ()).unwrap_err() }
    };
    assert_invalid(
        &sub(SubscribeRequest {
            errno: vec!["EMFILE".into(), "ENOTANERRNO".into()],
            ..Default::default()
        })
        .await,
        "errno[1]:",
    );
    assert_invalid(
        &sub(SubscribeRequest {
            family: vec!["AF_NOPE".into()],
            ..Default::default()
        })
        .await,
        "family[0]:",
    );
    assert_invalid(
        &sub(SubscribeRequest {
            comm: "[unclosed".into(),
            ..Default::default()
        })
        .await,
        "comm:",
    );
    assert_invalid(
        &sub(SubscribeRequest {
            comm: "x".repeat(1000),
            ..Default::default()
        })
        .await,
        "comm:",
    );

    let ts = |s| {
        Some(hub_client::proto::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    let stats_err = |r: GetStatsRequest| {
        let mut c = c.clone();
        async move { c.get_stats(r).await.unwrap_err() }
    };
    assert_invalid(
        &stats_err(GetStatsRequest {
            since: ts(100),
            until: ts(50),
            ..Default::default()
        })
        .await,
        "until:",
    );
    assert_invalid(
        &stats_err(GetStatsRequest {
            last_seconds: -60,
            ..Default::default()
        })
        .await,
        "last_seconds:",
    );
    assert_invalid(
        &stats_err(GetStatsRequest {
            group_by: vec![99],
            ..Default::default()
        })
        .await,
        "group_by[0]:",
    );
    let nf = stats_err(GetStatsRequest {
        node: vec!["ghost".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(nf.code(), Code::NotFound, "{nf:?}");
    let nf = c
        .list_tappers(ListTappersRequest {
            node: vec!["ghost".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(nf.code(), Code::NotFound, "{nf:?}");

    // Malformed report streams.
    assert_invalid(
        &report_status(&hub, vec![batch(vec![good_event(1)])]).await,
        "hello:",
    );
    assert_invalid(
        &report_status(
            &hub,
            vec![ReportRequest {
                msg: Some(Msg::Hello(Hello::default())),
            }],
        )
        .await,
        "hello.node:",
    );
    assert_invalid(
        &report_status(
            &hub,
            vec![hello("bad-node"), batch(vec![good_event(1), good_event(0)])],
        )
        .await,
        "events[1].seq:",
    );
    let mut no_ts = good_event(1);
    no_ts.ts = None;
    assert_invalid(
        &report_status(&hub, vec![hello("bad-node"), batch(vec![no_ts])]).await,
        "events[0].ts:",
    );
    // A user stack beyond 32 frames, or a frame with an offset but no module.
    let frame = StackFrame {
        address: 0x1000,
        module: Some("/bin/w".into()),
        offset: Some(0),
        symbol: None,
        build_id: None,
    };
    let mut deep = good_event(1);
    deep.user_stack = vec![frame.clone(); 33];
    assert_invalid(
        &report_status(&hub, vec![hello("bad-node"), batch(vec![deep])]).await,
        "events[0].user_stack:",
    );
    let mut no_module = good_event(1);
    no_module.user_stack = vec![
        frame.clone(),
        StackFrame {
            module: None,
            ..frame
        },
    ];
    assert_invalid(
        &report_status(&hub, vec![hello("bad-node"), batch(vec![no_module])]).await,
        "events[0].user_stack[1].offset:",
    );
    // --max-message-bytes 65536: one byte over is refused, and so is far more (over twice the
    // limit and over 1 MiB), both INVALID_ARGUMENT naming the message; exactly the limit is
    // decoded (and then judged field by field: here its comm is too long).
    let sized = |bytes: usize, comm_len: usize| {
        let mut e = good_event(1);
        e.comm = "c".repeat(comm_len);
        let base = batch(vec![e.clone()]).encoded_len();
        // The cmdline's length prefix grows by a byte or two along with it.
        let mut pad = bytes - base;
        loop {
            e.cmdline = "x".repeat(pad);
            let len = batch(vec![e.clone()]).encoded_len();
            if len == bytes {
                return batch(vec![e]);
            }
            pad = pad + bytes - len;
        }
    };
    for bytes in [65_537, 1_100_000] {
        let s = report_status(&hub, vec![hello("bad-node"), sized(bytes, 1)]).await;
        assert_invalid(&s, "ReportRequest:");
        assert!(
            s.message().ends_with(&format!(
                "message of {bytes} bytes exceeds the limit of 65536 bytes"
            )),
            "{s:?}"
        );
    }
    assert_invalid(
        &report_status(&hub, vec![hello("bad-node"), sized(65_536, 100)]).await,
        "events[0].comm:",
    );
    // A unary request over the limit gets the same error.
    let s = c
        .get_stats(GetStatsRequest {
            node: vec!["n".repeat(70_000)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "GetStatsRequest:");
    assert!(
        s.message().contains("exceeds the limit of 65536 bytes"),
        "{s:?}"
    );
    let mut long_comm = good_event(1);
    long_comm.comm = "c".repeat(100);
    assert_invalid(
        &report_status(&hub, vec![hello("bad-node"), batch(vec![long_comm])]).await,
        "events[0].comm:",
    );

    // None of it was stored: bad-node has no events.
    let r = c
        .get_stats(GetStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.per_node.get("bad-node"), None);
    assert_eq!(r.total_events, 1);

    // The good reporter and subscriber are still served.
    for _ in 0..5 {
        reporter.send_event(good_event(0));
    }
    assert!(
        reporter.flush(Duration::from_secs(20)).await,
        "{:?}",
        reporter.stats()
    );
    let mut got = 0;
    tokio::time::timeout(Duration::from_secs(20), async {
        while got < 6 {
            if let Some(Item::Event(e)) = good_sub.message().await.unwrap().unwrap().item {
                assert_eq!(e.node, "good-node");
                got += 1;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the good subscriber got only {got} of 6 events"));
    let r = c
        .get_stats(GetStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.total_events, 6);
    reporter.shutdown(Duration::from_secs(1)).await;
    hub.stop().await;
}
