//! The reporter against the real hub: events the hub rejects for good (a field over its
//! limit, a message over its size limit) become loss records covering exactly their seqs,
//! everything else arrives, and the reporter reconnects once per rejection, not in a loop;
//! an ack beyond what the reporter sent is not believed; with several hubs the first live
//! one of the list wins and a failover re-sends nothing acked.
//!
//! Needs the hub binary: `cargo build -p hub` (or set `HUB_BIN`).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use hub_client::{
    REASON_REJECTED, Reporter, ReporterConfig,
    proto::{
        Timestamp,
        v1::{
            Event, Hello, ListTappersRequest, Loss, ReportRequest, SubscribeRequest,
            report_request::Msg, report_response, subscribe_request::Since,
            subscribe_response::Item,
        },
    },
};

/// A `cmdline` over the hub's limit (`tapper_proto::limits::CMDLINE`) and over the test's
/// `max_batch_bytes`, so its event goes alone in a batch.
const OVER_MAX_CMDLINE: usize = 128 * 1024;
const _: () = assert!(OVER_MAX_CMDLINE > hub_client::proto::limits::CMDLINE);
/// The hub's default limit for one message.
const HUB_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// The `hub` binary: $HUB_BIN, or in the target directory next to this test's.
fn hub_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HUB_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("hub");
    assert!(
        p.exists(),
        "hub binary not found at {}: run `cargo build -p hub` first or set HUB_BIN",
        p.display()
    );
    p
}

/// The address in the hub's ready line, once its log has one.
fn ready_addr(log: &str) -> Option<String> {
    let rest = log.split("hub listening on ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_owned())
}

/// A hub on 127.0.0.1:0 with an in-memory store, killed on drop.
struct Hub {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Hub {
    fn start() -> Hub {
        static N: AtomicU32 = AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "hub-client-it-{}-{}.log",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new(hub_bin())
            .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawning hub");
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = ready_addr(&text) {
                break addr;
            }
            assert!(
                Instant::now() < deadline,
                "hub not ready within 30 s; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Hub {
            child,
            url: format!("http://{addr}"),
            log,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn event(cmdline_len: usize) -> Event {
    Event {
        ts: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        pid: 42,
        comm: "victim".into(),
        cmdline: "a".repeat(cmdline_len),
        errno: 24,
        errno_name: "EMFILE".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_batches_become_loss_records_and_the_rest_arrives() {
    let hub = Hub::start();
    let mut cfg = ReporterConfig::new(&hub.url, "it-node");
    cfg.max_batch_bytes = 64 * 1024;
    cfg.backoff_initial = Duration::from_millis(20);
    let reporter = Reporter::spawn(cfg).unwrap();

    // A field over the hub's limit, then a message over its size limit, among normal events.
    let mut normal = Vec::new();
    let mut rejected = Vec::new();
    for i in 0..23 {
        match i {
            7 => rejected.push(reporter.send_event(event(OVER_MAX_CMDLINE))),
            15 => rejected.push(reporter.send_event(event(HUB_MAX_MESSAGE + 1))),
            _ => normal.push(reporter.send_event(event(100))),
        }
    }
    assert!(
        reporter.flush(Duration::from_secs(60)).await,
        "not all acked: {:?}",
        reporter.stats()
    );

    let mut client = hub_client::connect(&hub.url).await.unwrap();
    let request = SubscribeRequest {
        since: Some(Since::SinceHubSeq(0)),
        follow: false,
        ..Default::default()
    };
    let mut stream = client.subscribe(request).await.unwrap().into_inner();
    let (mut seqs, mut losses) = (Vec::new(), Vec::<Loss>::new());
    let replay = async {
        while let Some(resp) = stream.message().await.unwrap() {
            match resp.item {
                Some(Item::Event(e)) => seqs.push(e.seq),
                Some(Item::Loss(l)) => losses.push(l.loss.unwrap()),
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), replay)
        .await
        .expect("replay did not end within 30 s");

    seqs.sort_unstable();
    assert_eq!(seqs, normal, "every normal event arrives");
    losses.sort_by_key(|l| l.first_seq);
    let ranges: Vec<_> = losses
        .iter()
        .map(|l| (l.first_seq, l.last_seq, l.count))
        .collect();
    assert_eq!(
        ranges,
        rejected.iter().map(|&s| (s, s, 1)).collect::<Vec<_>>(),
        "one loss record per rejected batch, covering exactly its seqs"
    );
    for l in &losses {
        assert!(l.reason.starts_with(REASON_REJECTED), "{}", l.reason);
    }
    assert!(losses[0].reason.contains("cmdline"), "{}", losses[0].reason);

    let tappers = client
        .list_tappers(ListTappersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tappers;
    assert_eq!(tappers.len(), 1);
    assert_eq!(tappers[0].acked_seq, 23);

    let stats = reporter.shutdown(Duration::from_secs(10)).await;
    assert_eq!((stats.last_seq, stats.acked_seq), (23, 23));
    assert_eq!((stats.rejected_events, stats.dropped_events), (2, 0));
    assert_eq!(stats.buffered_events, 0);
    assert_eq!(
        stats.connects, 3,
        "one connection, then one reconnect per rejection: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_beyond_what_was_sent_is_clamped() {
    let hub = Hub::start();
    let reporter = Reporter::spawn(ReporterConfig::new(&hub.url, "it-node")).unwrap();
    for _ in 0..5 {
        reporter.send_event(event(10));
    }
    assert!(reporter.flush(Duration::from_secs(60)).await);

    // Someone else claims the rest of this instance's seq space on the hub.
    let hello = Hello {
        node: reporter.node().into(),
        instance_id: reporter.instance_id().into(),
        ..Default::default()
    };
    let claim = Loss {
        count: u64::MAX - 5,
        reason: "hijack".into(),
        first_seq: 6,
        last_seq: u64::MAX,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tx.send(ReportRequest {
        msg: Some(Msg::Hello(hello)),
    })
    .await
    .unwrap();
    tx.send(ReportRequest {
        msg: Some(Msg::Loss(claim)),
    })
    .await
    .unwrap();
    let mut client = hub_client::connect(&hub.url).await.unwrap();
    let mut acks = client
        .report(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // Today's hub takes the claim; once it refuses a second Hello for a live instance, the
    // stream ends with an error instead and the reporter has nothing to clamp.
    let claim_taken = async {
        while let Ok(Some(resp)) = acks.message().await {
            if let Some(report_response::Msg::Ack(a)) = resp.msg
                && a.acked_seq == u64::MAX
            {
                return true;
            }
        }
        false
    };
    let claim_taken = tokio::time::timeout(Duration::from_secs(30), claim_taken)
        .await
        .expect("no answer to the claim within 30 s");
    eprintln!("the hub took the claim: {claim_taken}");

    // The reporter counts only what it sent as acked.
    for _ in 0..5 {
        reporter.send_event(event(10));
    }
    assert!(reporter.flush(Duration::from_secs(60)).await);
    let stats = reporter.shutdown(Duration::from_secs(10)).await;
    assert_eq!((stats.last_seq, stats.acked_seq), (10, 10), "{stats:?}");
}

/// The tappers a hub knows, as (instance, events received, acked seq).
async fn tappers_at(url: &str) -> Vec<(String, u64, u64)> {
    let mut client = hub_client::connect(url).await.unwrap();
    let list = client
        .list_tappers(ListTappersRequest::default())
        .await
        .unwrap()
        .into_inner();
    list.tappers
        .into_iter()
        .map(|t| (t.instance_id, t.events_received, t.acked_seq))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_takes_the_first_live_hub_and_never_resends_what_was_acked() {
    // Hubs with databases of their own: the second sees exactly what the first did not ack.
    let (first, second) = (Hub::start(), Hub::start());
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut cfg = ReporterConfig::new(format!("{dead},{},{}", first.url, second.url), "it-node");
    cfg.backoff_initial = Duration::from_millis(20);
    let reporter = Reporter::spawn(cfg).unwrap();
    assert_eq!(
        reporter.hubs(),
        [dead.clone(), first.url.clone(), second.url.clone()]
    );
    for _ in 0..50 {
        reporter.send_event(event(10));
    }
    assert!(reporter.flush(Duration::from_secs(60)).await);
    assert_eq!(reporter.hub(), first.url, "the first live hub of the list");
    assert_eq!(reporter.stats().connects, 1);
    let instance = reporter.instance_id().to_owned();
    assert_eq!(tappers_at(&first.url).await, [(instance.clone(), 50, 50)]);
    assert_eq!(tappers_at(&second.url).await, []);

    drop(first); // SIGKILL
    for _ in 0..30 {
        reporter.send_event(event(10));
    }
    // Only seqs 51..=80 reach the second hub: nothing the first acked is re-sent. Lacking
    // 1..=50, that hub cannot ack them (acks cover a prefix), which is why failover is for
    // hubs sharing one database.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tappers_at(&second.url).await != [(instance.clone(), 30, 0)] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            tappers_at(&second.url).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reporter.hub(), second.url);
    let stats = reporter.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        (stats.last_seq, stats.acked_seq, stats.connects),
        (80, 50, 2)
    );
}
