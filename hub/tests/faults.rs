//! Faults with real processes: SIGKILL the hub mid-stream and restart it on the same store;
//! SIGKILL a reporter; a stalled subscriber next to a fast one.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Hub, hub_client_bin, scratch, wait_for};
use hub_client::{
    REASON_BUFFER_FULL, Reporter, ReporterConfig,
    proto::v1::{
        Event, ListTappersRequest, SubscribeRequest, subscribe_request::Since,
        subscribe_response::Item,
    },
};

fn event(i: u64) -> Event {
    Event {
        ts: Some(hub_client::proto::timestamp_from_unix_nanos(
            1_700_000_000_000_000_000 + i as i64,
        )),
        pid: 4000 + i as u32,
        tid: 4000 + i as u32,
        comm: "faulty".into(),
        errno: 24,
        errno_name: "EMFILE".into(),
        message: "Too many open files".into(),
        family: Some(2),
        family_name: "AF_INET".into(),
        probe: "tracepoint".into(),
        ..Default::default()
    }
}

/// What a resuming subscriber saw.
#[derive(Default)]
struct Seen {
    /// seq -> times seen, for the reporter's instance.
    events: BTreeMap<u64, u32>,
    /// (first, last, count, reason) of loss notices.
    losses: Vec<(u64, u64, u64, String)>,
    last_hub_seq: u64,
    lagged: u64,
}

/// The real `hub-client watch --json`, replaying from the start and following; it must
/// resume by itself after the hub dies and comes back.
struct Watcher {
    child: std::process::Child,
    reader: std::thread::JoinHandle<()>,
}

impl Watcher {
    fn start(url: &str, node: &str, seen: Arc<Mutex<Seen>>, log: &std::path::Path) -> Watcher {
        let mut child = Command::new(hub_client_bin())
            .args([
                "--hub",
                url,
                "watch",
                "--json",
                "--node",
                node,
                "--since-seq",
                "0",
            ])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("creating the watch's log"))
            .spawn()
            .expect("spawning hub-client watch");
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
                let mut s = seen.lock().unwrap();
                if let Some(loss) = v.get("loss") {
                    s.last_hub_seq = loss["hub_seq"].as_u64().unwrap();
                    s.losses.push((
                        loss["first_seq"].as_u64().unwrap(),
                        loss["last_seq"].as_u64().unwrap(),
                        loss["count"].as_u64().unwrap(),
                        loss["reason"].as_str().unwrap().to_owned(),
                    ));
                } else if let Some(lagged) = v.get("lagged") {
                    s.lagged += lagged["skipped"].as_u64().unwrap();
                } else {
                    let hub_seq = v["hub_seq"].as_u64().unwrap();
                    assert!(hub_seq > s.last_hub_seq, "hub_seq went backwards");
                    s.last_hub_seq = hub_seq;
                    *s.events.entry(v["seq"].as_u64().unwrap()).or_default() += 1;
                }
            }
        });
        Watcher { child, reader }
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader
            .join()
            .expect("the watch output reader panicked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_sigkill_and_restart_delivers_everything_once_and_accounts_for_drops() {
    let dir = scratch("restart");
    let db = dir.join("hub.db");
    let mut hub = Hub::start(&dir, db.to_str().unwrap(), &[]);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let watch_log = dir.join("watch.log");
    let watcher = Watcher::start(&hub.url(), "restart-node", seen.clone(), &watch_log);

    let mut cfg = ReporterConfig::new(hub.url(), "restart-node");
    cfg.buffer_capacity = 50;
    cfg.max_batch = 20;
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    let reporter = Reporter::spawn(cfg).unwrap();

    // Phase 1: connected and flushed.
    for i in 0..100 {
        reporter.send_event(event(i));
    }
    assert!(
        reporter.flush(Duration::from_secs(20)).await,
        "phase 1 not acked: {:?}",
        reporter.stats()
    );
    // The watch must be subscribed before the hub goes away: a watch whose very first
    // connection fails gives up rather than resume.
    wait_for(
        "the watch to print its first item",
        Duration::from_secs(20),
        || {
            let subscribed = seen.lock().unwrap().last_hub_seq > 0;
            async move { subscribed.then_some(()) }
        },
    )
    .await;

    // Phase 2: kill the hub while events are in flight.
    for i in 100..140 {
        reporter.send_event(event(i));
    }
    hub.kill9();
    // Phase 3: the hub is down; the buffer (50) overflows.
    wait_for(
        "the reporter to notice the dead hub",
        Duration::from_secs(20),
        || {
            let s = reporter.stats();
            async move { (!s.connected).then_some(()) }
        },
    )
    .await;
    for i in 140..400 {
        reporter.send_event(event(i));
    }
    reporter.report_loss(7, "kernel ring buffer full");
    let before = reporter.stats();
    assert!(
        before.dropped_events > 0,
        "the buffer bound was not exceeded: {before:?}"
    );

    // Restart on the same store; everything gets acked.
    hub.restart();
    assert!(
        reporter.flush(Duration::from_secs(30)).await,
        "not acked after restart: {:?}",
        reporter.stats()
    );
    let stats = reporter.stats();
    assert_eq!(stats.last_seq, 401, "400 events + 1 kernel loss record");
    assert_eq!(stats.acked_seq, 401);

    let expected_events = 400 - stats.dropped_events;
    // Bounded: the watch backs off up to 5 s while the hub is away, then replays.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (events, has_kernel) = {
            let s = seen.lock().unwrap();
            let has_kernel = s.losses.iter().any(|l| l.3 == "kernel ring buffer full");
            (s.events.len() as u64, has_kernel)
        };
        if events == expected_events && has_kernel {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber saw {events} of {expected_events} events (kernel loss seen: \
             {has_kernel}, output reader ended: {}) within 60 s; hub-client watch said:\n{}",
            watcher.reader.is_finished(),
            std::fs::read_to_string(&watch_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.stop();

    {
        let s = seen.lock().unwrap();
        let dups: Vec<_> = s.events.iter().filter(|(_, n)| **n != 1).collect();
        assert!(dups.is_empty(), "events delivered more than once: {dups:?}");
        // Every seq is exactly one event or inside exactly one loss record.
        let mut covered: BTreeMap<u64, u32> = s.events.keys().map(|k| (*k, 1)).collect();
        for (first, last, _, _) in &s.losses {
            for q in *first..=*last {
                *covered.entry(q).or_default() += 1;
            }
        }
        assert_eq!(
            covered.keys().copied().collect::<Vec<_>>(),
            (1..=401).collect::<Vec<_>>()
        );
        assert!(covered.values().all(|n| *n == 1), "a seq is covered twice");
        let buffer_lost: u64 = s
            .losses
            .iter()
            .filter(|l| l.3 == REASON_BUFFER_FULL)
            .map(|l| l.2)
            .sum();
        assert_eq!(
            buffer_lost, stats.dropped_events,
            "loss records account exactly for the drops"
        );
        assert_eq!(s.events.len() as u64 + buffer_lost, 400);
        assert_eq!(
            s.losses
                .iter()
                .filter(|l| l.3 == "kernel ring buffer full")
                .map(|l| l.2)
                .sum::<u64>(),
            7
        );
        assert_eq!(s.lagged, 0);
    }
    reporter.shutdown(Duration::from_secs(1)).await;
}

/// The hub's tapper list, or None while it cannot be had.
async fn tappers(
    mut client: hub_client::proto::v1::hub_client::HubClient<hub_client::HubChannel>,
) -> Option<Vec<hub_client::proto::v1::TapperInfo>> {
    let response = client
        .list_tappers(ListTappersRequest::default())
        .await
        .ok()?;
    Some(response.into_inner().tappers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_reporter_shows_disconnected() {
    let dir = scratch("killrep");
    let hub = Hub::start(&dir, ":memory:", &[]);
    let mut child = Command::new(hub_client_bin())
        .args([
            "replay",
            "--hub",
            &hub.url(),
            "--node",
            "victim",
            "--synthetic",
            "10",
            "--hold",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut client = hub.client().await;
    wait_for(
        "victim connected with 10 events",
        Duration::from_secs(20),
        || {
            let c = client.clone();
            async move {
                tappers(c)
                    .await?
                    .iter()
                    .any(|t| t.node == "victim" && t.connected && t.events_received == 10)
                    .then_some(())
            }
        },
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let t = wait_for("victim shown disconnected", Duration::from_secs(20), || {
        let c = client.clone();
        async move {
            tappers(c)
                .await?
                .into_iter()
                .find(|t| t.node == "victim" && !t.connected)
        }
    })
    .await;
    assert_eq!(t.events_received, 10);
    assert!(t.peer.is_empty());
    let connected = client
        .list_tappers(ListTappersRequest {
            connected_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tappers;
    assert!(connected.is_empty(), "{connected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_gets_lagged_notice_while_another_gets_everything() {
    // Far more than the stalled client's queue plus HTTP/2 windows hold; the queue is large
    // enough that the fast client, on a busy machine, never falls a whole queue behind.
    const N: u64 = 60_000;
    let dir = scratch("lag");
    let hub = Hub::start(&dir, ":memory:", &["--subscriber-queue", "20000"]);
    let req = SubscribeRequest {
        since: Some(Since::SinceHubSeq(0)),
        follow: true,
        ..Default::default()
    };
    let mut stalled_client = hub.client().await;
    let mut stalled = stalled_client
        .subscribe(req.clone())
        .await
        .unwrap()
        .into_inner();
    let mut fast_client = hub.client().await;
    let mut fast = fast_client.subscribe(req).await.unwrap().into_inner();
    let fast_task = tokio::spawn(async move {
        let mut seqs = HashSet::new();
        let mut lagged = 0;
        while (seqs.len() as u64) < N {
            match fast.message().await.unwrap().unwrap().item {
                Some(Item::Event(e)) => assert!(seqs.insert(e.seq), "duplicate {}", e.seq),
                Some(Item::Lagged(l)) => {
                    lagged += l.skipped;
                    assert!(seqs.len() as u64 + lagged <= N);
                    if seqs.len() as u64 + lagged == N {
                        break;
                    }
                }
                _ => {}
            }
        }
        (seqs.len() as u64, lagged)
    });

    let out = common::hub_client(&[
        "replay",
        "--hub",
        &hub.url(),
        "--node",
        "lag-node",
        "--synthetic",
        &N.to_string(),
    ]);
    assert!(out.contains("\"flushed\":true"), "{out}");
    let (fast_events, fast_lagged) = tokio::time::timeout(Duration::from_secs(60), fast_task)
        .await
        .expect("the fast subscriber did not get all events within 60s")
        .unwrap();
    assert_eq!((fast_events, fast_lagged), (N, 0));

    // Now the stalled one reads: what it got plus what it was told it skipped is exact.
    let (mut events, mut skipped, mut notices) = (0u64, 0u64, 0u64);
    tokio::time::timeout(Duration::from_secs(60), async {
        while events + skipped < N {
            match stalled.message().await.unwrap().unwrap().item {
                Some(Item::Event(_)) => events += 1,
                Some(Item::Lagged(l)) => {
                    skipped += l.skipped;
                    notices += 1;
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("stalled subscriber stuck at events={events} skipped={skipped}"));
    assert!(
        notices >= 1 && skipped > 0,
        "no lagged notice: events={events} skipped={skipped}"
    );
    assert_eq!(events + skipped, N);
}
