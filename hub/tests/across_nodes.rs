//! Several reporter processes with distinct node names: GetStats totals per node and overall
//! are exact, and ListTappers knows each of them.

mod common;

use std::{collections::HashMap, process::Command, time::Duration};

use common::{InProcessHub, hub_client_bin, wait_for};
use hub_client::proto::v1::{GetStatsRequest, GroupBy, ListTappersRequest};

const ERRNOS: [(&str, i32); 4] = [
    ("EMFILE", 24),
    ("EAFNOSUPPORT", 97),
    ("EINVAL", 22),
    ("EPROTONOSUPPORT", 93),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_stats_are_exact() {
    let hub = InProcessHub::start(|_| {}).await;
    let nodes = [
        ("node-a", 1000u64, 0u64),
        ("node-b", 257, 5),
        ("node-c", 3, 2),
    ];
    let children: Vec<_> = nodes
        .iter()
        .map(|(node, n, drops)| {
            Command::new(hub_client_bin())
                .args([
                    "replay",
                    "--hub",
                    &hub.url(),
                    "--node",
                    node,
                    "--synthetic",
                    &n.to_string(),
                ])
                .args(["--kernel-drops", &drops.to_string()])
                .output_async()
        })
        .collect();
    for (c, (node, _, _)) in children.into_iter().zip(nodes) {
        let out = c.await.unwrap();
        assert!(
            out.status.success(),
            "replay for {node} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut client = hub.client().await;
    let r = client
        .get_stats(GetStatsRequest {
            group_by: vec![GroupBy::Node as i32, GroupBy::Errno as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let total: u64 = nodes.iter().map(|n| n.1).sum();
    assert_eq!(r.total_events, total);
    assert_eq!(r.total_lost, nodes.iter().map(|n| n.2).sum::<u64>());
    for (node, n, _) in nodes {
        assert_eq!(r.per_node.get(node).copied(), Some(n), "per_node[{node}]");
        // The synthetic generator cycles through ERRNOS.
        for (k, (name, errno)) in ERRNOS.iter().enumerate() {
            let want = (n + 3 - k as u64) / 4;
            let got = r
                .rows
                .iter()
                .find(|row| row.node == node && row.errno == *errno)
                .map_or(0, |row| row.count);
            assert_eq!(got, want, "{node} {name}");
            if want > 0 {
                let row = r
                    .rows
                    .iter()
                    .find(|row| row.node == node && row.errno == *errno)
                    .unwrap();
                assert_eq!(row.errno_name, *name);
            }
        }
    }
    assert_eq!(r.rows.iter().map(|r| r.count).sum::<u64>(), total);

    // Filtered to one node; an unknown node is NOT_FOUND.
    let r = client
        .get_stats(GetStatsRequest {
            node: vec!["node-b".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.total_events, r.total_lost), (257, 5));
    let e = client
        .get_stats(GetStatsRequest {
            node: vec!["node-zz".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert!(e.message().contains("node-zz"));

    let tappers = wait_for("all replays disconnected", Duration::from_secs(10), || {
        let mut c = client.clone();
        async move {
            let t = c
                .list_tappers(ListTappersRequest::default())
                .await
                .unwrap()
                .into_inner()
                .tappers;
            t.iter().all(|t| !t.connected).then_some(t)
        }
    })
    .await;
    let by_node: HashMap<_, _> = tappers.iter().map(|t| (t.node.as_str(), t)).collect();
    assert_eq!(by_node.len(), 3);
    for (node, n, drops) in nodes {
        let t = by_node[node];
        assert_eq!((t.events_received, t.losses_reported), (n, drops), "{node}");
        assert_eq!(t.acked_seq, n + u64::from(drops > 0), "{node}");
    }

    // The CLI prints the same totals.
    let out = common::hub_client(&["--hub", &hub.url(), "stats", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["total_events"], total);
    hub.stop().await;
}

trait OutputAsync {
    fn output_async(self) -> tokio::task::JoinHandle<std::process::Output>;
}

impl OutputAsync for &mut Command {
    fn output_async(self) -> tokio::task::JoinHandle<std::process::Output> {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawning hub-client");
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
    }
}
