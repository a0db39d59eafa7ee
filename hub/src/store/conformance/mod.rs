//! One conformance suite for every store engine: each case drives a store through the
//! [`Writer`] and [`Reader`] traits only, against SQLite always and against a real
//! PostgreSQL server the test starts (it fails, saying what to install, when it cannot).

mod commits;
pub mod reads;
pub mod records;
mod retention;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
};

use tapper_testkit::Postgres;

use super::{QueryBudget, Reader, Store, Writer, is_postgres};

/// A fresh, empty database of one engine for one case.
pub struct Db {
    name: String,
    /// The SQLite file's directory, removed with the case.
    _dir: Option<records::TempDb>,
}

impl Db {
    /// Opens (or reopens) the store with the default query budget.
    pub fn open(&self) -> (Box<dyn Writer>, Arc<dyn Reader>) {
        let st = Store::open(&self.name, QueryBudget::default()).unwrap();
        (st.writer, st.reader)
    }

    /// Rows in `table`, for what the traits do not show (e.g. stacks shared by events).
    pub fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        if is_postgres(&self.name) {
            let mut client = postgres::Client::connect(&self.name, postgres::NoTls).unwrap();
            return client.query_one(&sql, &[]).unwrap().get(0);
        }
        let conn = rusqlite::Connection::open(&self.name).unwrap();
        conn.query_row(&sql, [], |r| r.get(0)).unwrap()
    }
}

/// A case: its name and what it runs on a fresh database.
type Case = (&'static str, fn(&Db));

/// Cases named by their functions.
macro_rules! cases {
    ($($module:ident::$case:ident),* $(,)?) => {
        &[$((stringify!($case), $module::$case as fn(&Db))),*]
    };
}

/// Every case.
const CASES: &[Case] = cases![
    commits::dedup_ack_and_hub_seq,
    commits::ended_streams_are_forgotten_and_dedup_still_holds,
    commits::a_group_is_stored_at_its_end_and_a_refused_step_undoes_only_itself,
    commits::state_survives_reopen,
    commits::a_loss_over_stored_events_is_rejected_and_stores_nothing,
    commits::huge_losses_saturate_instead_of_breaking_stats,
    commits::warnings_take_hub_seqs_dedup_and_replay_between_events,
    retention::the_row_cap_counts_events_and_losses,
    retention::idle_instances_expire_unless_live,
    retention::age_is_the_receive_time_for_events_and_losses,
    retention::retention_drops_the_stacks_no_event_references,
    reads::groups_and_totals,
    reads::an_event_counts_the_failures_it_stands_for,
    reads::the_window_is_the_receive_time_for_events_and_losses,
    reads::since_is_the_receive_time,
    reads::identical_stacks_are_stored_once_and_read_back_whole,
    reads::identity_is_served_back_exactly_and_grouped,
];

/// Runs every case on a fresh database from `new_db`; names the cases that failed (each
/// failure's assertion is printed where it happens).
fn run_all(engine: &str, new_db: impl Fn() -> Db) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        eprintln!("{engine}: {name}");
        let db = new_db();
        if catch_unwind(AssertUnwindSafe(|| case(&db))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "{engine} failed: {failed:?}");
}

#[test]
fn sqlite_conforms() {
    run_all("sqlite", || {
        let dir = records::TempDb::new("conformance");
        Db {
            name: dir.path(),
            _dir: Some(dir),
        }
    });
}

#[test]
fn postgres_conforms() {
    let mut pg = Postgres::start().unwrap_or_else(|e| panic!("{e}"));
    run_all("postgres", || Db {
        name: pg.url(&pg.create_database().unwrap()),
        _dir: None,
    });
    pg.stop().unwrap();
}
