//! Part 9 of BENCHMARKS.md (user stacks): the cost per failing call of `tapper --stacks`
//! against exit-only without it, measured side by side with part 1's machinery.

use std::{fmt::Write, path::Path};

use anyhow::Result;

use crate::{
    overhead::{self, Condition},
    overhead_report,
    report::{load, skipped},
    summary::{Summary, show},
    syscall::Kind,
};

/// The heading that starts part 9.
pub const HEADING: &str = "## 9. Stacks";
/// The result file `scripts/bench.sh` writes for this part.
const RESULTS: &str = "stacks-host.json";
/// The target: `--stacks` adds at most this much per failing call.
const TARGET_NS: f64 = 2_000.0;

/// Part 9 alone, from `stacks-host.json` in `dir`.
pub fn render(dir: &Path) -> Result<String> {
    let mut md = format!("{HEADING}\n\n");
    md.push_str(
        "Method: as part 1 (one thread times `socket()` in a tight loop; each run measures \
         every condition once, in a rotating order, against the no-probe baseline of the \
         same run), with three conditions: no probes, `tapper --probe exit-only --output \
         none`, and the same with `--stacks`, where the kernel also walks the caller's user \
         stack (`bpf_get_stack`, up to 32 frames) into a 344-byte record instead of the \
         80-byte one, and the tapper normalizes and symbolizes it with blazesym. The \
         benchmark binary is built without frame pointers, so the walk ends after the few \
         frames the frame-pointer chain yields; a deeper stack costs one user-memory read \
         more per frame.\n\n",
    );
    match load::<overhead::Outcome>(dir, RESULTS)? {
        Some(o) => table(&mut md, &o)?,
        None => writeln!(md, "Not measured: {}\n", skipped(dir, "stacks-host"))?,
    }
    Ok(md)
}

fn table(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    overhead_report::run_line(md, o)?;
    md.push_str(
        "| condition | call | ns per call | added ns vs no probes | added ns by --stacks |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for kind in [Kind::Fail, Kind::Ok] {
        let call = match kind {
            Kind::Fail => "failing",
            Kind::Ok => "successful",
        };
        for c in [
            Condition::None,
            Condition::TapperExitOnly,
            Condition::TapperExitOnlyStacks,
        ] {
            let abs = show(&overhead::absolute(o, c, kind), 1);
            let added = match c {
                Condition::None => "—".into(),
                _ => show(&overhead::added(o, c, kind).0, 1),
            };
            let by_stacks = match c {
                Condition::TapperExitOnlyStacks => show(&stacks_added(o, kind), 1),
                _ => "—".into(),
            };
            writeln!(
                md,
                "| {} | {call} | {abs} | {added} | {by_stacks} |",
                c.label()
            )?;
        }
    }
    let drops: u64 = o.tapper_drops.iter().map(|d| d.2).sum();
    writeln!(
        md,
        "\nTapper ring-buffer drops during these loops (summed over runs): {drops}.\n"
    )?;
    let Some(s) = Summary::of(&stacks_added(o, Kind::Fail)) else {
        return Ok(());
    };
    // A dropped record skips the copy to user space, so drops make a failing call cheaper
    // and the comparison says nothing about the target.
    let verdict = if drops > 0 {
        "not judged (the ring buffer dropped records, which makes failing calls cheaper; \
         rerun on a quieter host)"
    } else if s.median <= TARGET_NS {
        "met"
    } else {
        "**not met**"
    };
    writeln!(
        md,
        "Target (`--stacks` adds at most {TARGET_NS:.0} ns per failing call): {verdict} — \
         median added {:.1} ns against exit-only without stacks in the same run.\n",
        s.median
    )?;
    Ok(())
}

/// Per run: exit-only with stacks minus exit-only without, in ns.
fn stacks_added(o: &overhead::Outcome, kind: Kind) -> Vec<f64> {
    overhead::added_to(
        o,
        Condition::TapperExitOnly,
        Condition::TapperExitOnlyStacks,
        kind,
    )
    .0
}
