//! The store's one writer, on its own thread, with group commit: the steps that all Report
//! streams queue meanwhile share one transaction, and each is answered (and published to
//! subscribers, in hub_seq order) only after that transaction committed. A group ends early
//! when the writer says it is full, so that a burst does not hold back every live stream.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{Arc, mpsc},
    task::{Context, Poll},
    thread,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;
use tracing::warn;

use crate::{
    error::HubError,
    ingest::fanout::Fanout,
    store::{StoreError, Writer},
};

/// Most steps in one transaction, so that one group's answers are not held up for long.
const MAX_GROUP: usize = 256;

/// What runs once the group's transaction ended: publish and answer, or fail.
type Done = Box<dyn FnOnce(&Fanout, Result<(), &Arc<StoreError>>) + Send>;
/// A step of a group: its store work, returning what to do after the commit.
type Step = Box<dyn FnOnce(&mut dyn Writer) -> Done + Send>;
/// Work that runs between groups, with nothing uncommitted (retention, a subscriber's seam).
type Solo = Box<dyn FnOnce(&mut dyn Writer, &Fanout) + Send>;

enum Job {
    Grouped(Step),
    Alone(Solo),
}

/// The handle request handlers (and retention) queue their store steps through; clones
/// share one writer thread.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

/// The answer to a queued step, once its group committed.
pub struct Pending<T>(oneshot::Receiver<Result<T, StoreError>>);

impl<T> Future for Pending<T> {
    type Output = Result<T, HubError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|answer| match answer {
            Ok(result) => result.map_err(HubError::from),
            Err(_) => Err(HubError::ShuttingDown),
        })
    }
}

impl GroupWriter {
    /// Starts the writer thread; it ends (and closes the store) when the last handle goes.
    /// `on_commit` learns how long each group's transaction took.
    pub fn spawn(
        writer: Box<dyn Writer>,
        fanout: Arc<Fanout>,
        on_commit: impl Fn(Duration) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(writer, &fanout, &queue, &on_commit))?;
        Ok(Self { jobs })
    }

    /// Queues `work` into the next group, now, in the caller's order. Once the group has
    /// committed, `finish` runs on the writer thread (in commit order: publish there) and
    /// its result is the answer.
    pub fn queue<T, R, W, F>(&self, work: W, finish: F) -> Result<Pending<R>, HubError>
    where
        T: Send + 'static,
        R: Send + 'static,
        W: FnOnce(&mut dyn Writer) -> Result<T, StoreError> + Send + 'static,
        F: FnOnce(&Fanout, T) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let step: Step = Box::new(move |writer| {
            let stepped = work(writer);
            Box::new(move |fanout, committed| {
                let result = match (stepped, committed) {
                    (Ok(value), Ok(())) => Ok(finish(fanout, value)),
                    (Ok(_), Err(err)) => Err(StoreError::GroupCommit(err.clone())),
                    (Err(err), _) => Err(err),
                };
                let _ = reply.send(result);
            })
        });
        self.send(Job::Grouped(step))?;
        Ok(Pending(answer))
    }

    /// Runs `f` alone on the writer thread, between groups: everything queued before it is
    /// committed and published, nothing after it yet.
    pub async fn alone<T, F>(&self, f: F) -> Result<T, HubError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Writer, &Fanout) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Alone(Box::new(move |writer, fanout| {
            let _ = reply.send(f(writer, fanout));
        })))?;
        Pending(answer).await
    }

    fn send(&self, job: Job) -> Result<(), HubError> {
        self.jobs.send(job).map_err(|_| HubError::ShuttingDown)
    }
}

fn run(
    mut writer: Box<dyn Writer>,
    fanout: &Fanout,
    queue: &mpsc::Receiver<Job>,
    on_commit: &dyn Fn(Duration),
) {
    let mut next = None;
    // Steps queued for a group that the writer found full: they open the next one.
    let mut carried = VecDeque::new();
    loop {
        let job = match (carried.pop_front(), next.take()) {
            (Some(step), alone) => {
                next = alone;
                Job::Grouped(step)
            }
            (None, Some(job)) => job,
            (None, None) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Alone(f) => f(writer.as_mut(), fanout),
            Job::Grouped(first) => {
                let mut steps = VecDeque::from([first]);
                steps.append(&mut carried);
                // Nothing queued after a waiting Alone job may join a group before it runs.
                while next.is_none() && steps.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(Job::Grouped(step)) => steps.push_back(step),
                        Ok(alone) => {
                            next = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let started = Instant::now();
                commit_group(writer.as_mut(), fanout, &mut steps);
                on_commit(started.elapsed());
                carried = steps;
            }
        }
    }
}

/// One transaction for the `steps` in front, until the writer says the group is full (the
/// rest stay in `steps`); each keeps its own outcome (a rejected step changes nothing), and
/// all learn whether the commit succeeded.
fn commit_group(writer: &mut dyn Writer, fanout: &Fanout, steps: &mut VecDeque<Step>) {
    if let Err(err) = writer.begin_group() {
        // Each step then commits on its own, which is slower but as safe.
        warn!(error = %err, "cannot open a group transaction; committing step by step");
    }
    let mut done: Vec<Done> = Vec::with_capacity(steps.len());
    while let Some(step) = steps.pop_front() {
        done.push(step(writer));
        if writer.group_full() {
            break;
        }
    }
    let committed = writer.end_group().map_err(Arc::new);
    if let Err(err) = &committed {
        warn!(error = %err, steps = done.len(), "a group commit failed; its steps are not acknowledged");
    }
    for d in done {
        d(fanout, committed.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tapper_proto::v1::{Event, Hello, Loss, SubscribeRequest};

    use super::*;
    use crate::{
        ingest::{
            fanout::{Item, Next, QueueBound},
            filter::Filter,
        },
        store::{InstanceKey, QueryBudget, Store},
    };

    fn key(node: &str) -> InstanceKey {
        InstanceKey {
            node: node.into(),
            instance_id: "i1".into(),
        }
    }

    fn hello(node: &str) -> Hello {
        Hello {
            node: node.into(),
            instance_id: "i1".into(),
            ..Default::default()
        }
    }

    fn event(seq: u64) -> Event {
        Event {
            seq,
            errno: 24,
            errno_name: "EMFILE".into(),
            comm: "x".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn steps_queued_at_once_are_answered_after_commit_and_published_in_order() {
        let store = Store::open(":memory:", QueryBudget::default()).unwrap();
        let fanout = Arc::new(Fanout::new(Duration::from_secs(60)).unwrap());
        let all = Filter::from_request(&SubscribeRequest::default()).unwrap();
        let queue = QueueBound {
            items: 1000,
            bytes: usize::MAX,
        };
        let mut live = fanout.subscribe(all, queue);
        let writer = GroupWriter::spawn(store.writer, fanout.clone(), |_| ()).unwrap();
        let nodes = ["a", "b", "c"];
        for node in nodes {
            let acked = writer
                .queue(move |s| s.hello(&hello(node), 1), |_, acked| acked)
                .unwrap()
                .await
                .unwrap();
            assert_eq!(acked, 0);
        }
        // Three streams' batches, all queued before any answer is awaited.
        let mut pending = Vec::new();
        for seq in 1..=40 {
            for node in nodes {
                let step = writer.queue(
                    move |s| s.commit_events(&key(node), vec![event(seq)], 2),
                    |fanout, c| {
                        fanout.publish_events(c.new);
                        c.acked
                    },
                );
                pending.push((seq, step.unwrap()));
            }
        }
        // A loss over a committed seq is refused on its own; the rest of its group stays.
        let overlapping = Loss {
            count: 1,
            reason: "r".into(),
            first_seq: 1,
            last_seq: 1,
        };
        let refused = writer
            .queue(
                move |s| s.commit_loss(&key("a"), overlapping, 3),
                |_, c| c.acked,
            )
            .unwrap();
        let after = writer
            .queue(
                move |s| s.commit_events(&key("a"), vec![event(41)], 3),
                |fanout, c| {
                    fanout.publish_events(c.new);
                    c.acked
                },
            )
            .unwrap();
        for (seq, step) in pending {
            assert_eq!(step.await.unwrap(), seq);
        }
        assert!(matches!(
            refused.await,
            Err(HubError::InvalidArgument { .. })
        ));
        assert_eq!(after.await.unwrap(), 41);
        for want in 1..=121 {
            match live.next().await {
                Next::Item(Item::Event(e)) => assert_eq!(e.hub_seq, want),
                _ => panic!("expected event {want}"),
            }
        }
        // A step alone sees everything before it committed.
        let last = writer.alone(|s, _| Ok(s.last_hub_seq())).await.unwrap();
        assert_eq!(last, 121);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_the_store_finds_full_commits_and_the_rest_opens_the_next() {
        let mut pg = tapper_testkit::Postgres::start().unwrap_or_else(|e| panic!("{e}"));
        let url = pg.url(&pg.create_database().unwrap());
        // The synchronous client may not start inside the test's runtime.
        let store = std::thread::spawn(move || Store::open(&url, QueryBudget::default()))
            .join()
            .unwrap()
            .unwrap();
        let fanout = Arc::new(Fanout::new(Duration::from_secs(60)).unwrap());
        let all = Filter::from_request(&SubscribeRequest::default()).unwrap();
        let queue = QueueBound {
            items: 100_000,
            bytes: usize::MAX,
        };
        let mut live = fanout.subscribe(all, queue);
        let groups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = groups.clone();
        let writer = GroupWriter::spawn(store.writer, fanout.clone(), move |_| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
        writer
            .queue(|s| s.hello(&hello("a"), 1), |_, acked| acked)
            .unwrap()
            .await
            .unwrap();
        // A group's answers go out before the writer counts it: a step alone runs after that.
        writer.alone(|_, _| Ok(())).await.unwrap();
        let before = groups.load(std::sync::atomic::Ordering::SeqCst);
        // A step that holds the writer until 12 batches of 1,000 events are queued behind
        // it: they would make one group, but the store finds it full after 5 (4,096 rows).
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (running, started) = std::sync::mpsc::channel::<()>();
        let held = writer
            .queue(
                move |_| {
                    let _ = running.send(());
                    Ok(gate.recv())
                },
                |_, _| (),
            )
            .unwrap();
        started.recv().unwrap();
        let mut pending = Vec::new();
        for b in 0..12u64 {
            let events = (1..=1000).map(|i| event(b * 1000 + i)).collect();
            let step = writer.queue(
                move |s| s.commit_events(&key("a"), events, 2),
                |fanout, c| {
                    fanout.publish_events(c.new);
                    c.acked
                },
            );
            pending.push((b, step.unwrap()));
        }
        open.send(()).unwrap();
        held.await.unwrap();
        for (b, step) in pending {
            assert_eq!(step.await.unwrap(), (b + 1) * 1000);
        }
        writer.alone(|_, _| Ok(())).await.unwrap();
        // The held step's group, then 5 + 5 + 2 batches.
        assert_eq!(groups.load(std::sync::atomic::Ordering::SeqCst) - before, 4);
        for want in 1..=12_000 {
            match live.next().await {
                Next::Item(Item::Event(e)) => assert_eq!(e.hub_seq, want),
                _ => panic!("expected event {want}"),
            }
        }
        drop(writer);
        pg.stop().unwrap();
    }
}
