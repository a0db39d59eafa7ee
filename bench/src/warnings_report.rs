//! Part 10 of BENCHMARKS.md (early warnings): the successful-call cost of exit-only mode
//! with warnings off, on (the default floor) and with the floor at 0, side by side.

use std::{fmt::Write, path::Path};

use anyhow::Result;

use crate::{
    overhead::{self, Condition},
    overhead_report::conditions_table,
    report::{self, load, skipped},
    summary::{Summary, show},
    syscall::Kind,
};

/// The heading that starts part 10.
pub const HEADING: &str = "## 10. Early warnings";
/// Its result file in the results directory.
pub const RESULTS: &str = "warnings.json";

/// Part 10 alone, from `warnings.json` in `dir`.
pub fn render(dir: &Path) -> Result<String> {
    let mut md = format!("{HEADING}\n\n");
    md.push_str(
        "Method: part 1's loops (same calls, same rotation of conditions from run to run, \
         added cost against the no-probe baseline of the same run), for exit-only mode with \
         its nofile warnings *off* (`--warn-nofile-ratio 0 --warn-file-max-ratio 0`), *on* \
         (the defaults: ratio 0.8, floor 64) and with the floor at 0 (`--warn-nofile-floor \
         0`: every successful call reads the task's soft RLIMIT_NOFILE and compares, the \
         most a successful call below the ratio can cost). The loop's descriptors stay \
         below 64, as most processes' do, so *on* costs one more compare than *off*.\n\n",
    );
    match load::<overhead::Outcome>(dir, RESULTS)? {
        Some(o) => {
            conditions_table(&mut md, &o)?;
            target(&mut md, &o)?;
        }
        None => writeln!(md, "Not measured: {}\n", skipped(dir, "warnings"))?,
    }
    Ok(md)
}

/// `report` with part 10 replaced by `part10`, or with it appended when it has none.
pub fn splice(report: &str, part10: &str) -> String {
    report::splice(report, HEADING, part10)
        .unwrap_or_else(|| format!("{}\n\n{part10}", report.trim_end_matches('\n')))
}

/// The target: warnings on cost a successful call no more than warnings off, within the
/// noise: per run, on minus off; met when the runs do not agree on a sign (or on is cheaper).
fn target(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    let per_run = |c| overhead::absolute(o, c, Kind::Ok);
    let (on, off, floor0) = (
        per_run(Condition::TapperExitOnly),
        per_run(Condition::TapperExitOnlyWarningsOff),
        per_run(Condition::TapperExitOnlyWarnFloor0),
    );
    let diff = |a: &[f64]| a.iter().zip(&off).map(|(x, y)| x - y).collect::<Vec<_>>();
    let (on_off, floor_off) = (diff(&on), diff(&floor0));
    let Some(s) = Summary::of(&on_off) else {
        return Ok(());
    };
    let met = s.min <= 0.0;
    writeln!(
        md,
        "Target (a successful call with warnings on costs the same as with them off, within \
         noise): {} — per run, on minus off: {} ns (median {:.1} ns; the runs {}).",
        if met { "met" } else { "**not met**" },
        show(&on_off, 1),
        s.median,
        if met {
            "disagree on the sign, or on is cheaper"
        } else {
            "all put on above off"
        }
    )?;
    if !floor_off.is_empty() {
        writeln!(
            md,
            "With the floor at 0 (the limit read on every call), per run minus off: {} ns.",
            show(&floor_off, 1)
        )?;
    }
    md.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ten_is_replaced_or_appended() {
        let new = format!("{HEADING}\n\nnew\n");
        let without = "# B\n\n## 7. Metrics\n\nm\n";
        assert_eq!(splice(without, &new), format!("{without}\n{new}"));
        let with = format!("# B\n\n{HEADING}\n\nold\n\n## 11. Later\n\nkept\n");
        assert_eq!(
            splice(&with, &new),
            format!("# B\n\n{new}## 11. Later\n\nkept\n")
        );
    }
}
