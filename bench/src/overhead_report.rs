//! Part 1 of BENCHMARKS.md (syscall overhead): its section, its targets, and refreshing
//! that section alone in an existing report.

use std::{fmt::Write, path::Path};

use anyhow::{Result, bail};

use crate::{
    overhead::{self, Condition},
    report::{self, load, load_str, skipped},
    summary::{Summary, show},
    syscall::Kind,
    tapper::{BPFTRACE_CORRELATED_PROGRAM, BPFTRACE_PRINTF_PROGRAM, BPFTRACE_PROGRAM},
};

/// The heading that starts part 1 in BENCHMARKS.md.
const HEADING: &str = "## 1. Syscall overhead";

/// Part 1 alone, from `overhead-host.json` and `overhead-vm.json` in `dir`.
pub fn render(dir: &Path) -> Result<String> {
    let host: Option<overhead::Outcome> = load(dir, "overhead-host.json")?;
    let vm: Option<overhead::Outcome> = load(dir, "overhead-vm.json")?;
    let mut md = String::new();
    section(&mut md, dir, host.as_ref(), vm.as_ref())?;
    Ok(md)
}

/// `report` with its part 1 replaced by `part1` (up to the next `## ` heading).
pub fn splice(report: &str, part1: &str) -> Result<String> {
    match report::splice(report, HEADING, part1) {
        Some(spliced) => Ok(spliced),
        None => {
            bail!("the report has no `{HEADING}` section to replace; run a full scripts/bench.sh")
        }
    }
}

pub fn section(
    md: &mut String,
    dir: &Path,
    host: Option<&overhead::Outcome>,
    vm: Option<&overhead::Outcome>,
) -> Result<()> {
    writeln!(md, "{HEADING}\n")?;
    md.push_str(
        "Method: one thread calls `socket()` in a tight loop and times the calls themselves \
         (batches of 256; descriptors of successful calls are closed after each batch, \
         outside the timed region; a warm-up of a tenth of the calls is not timed). \
         *Failing* is `socket(AF_INET, 12345, 0)` → EINVAL; *successful* is \
         `socket(AF_INET, SOCK_DGRAM, 0)`. Each run measures every condition once, in an \
         order that rotates from run to run, and the added cost is taken against the \
         no-probe baseline **of the same run**. The tapper runs with `--output none` (the \
         probe cost plus building each event in user space; writing it out is part 5). \
         Tapper modes: *exit-only* (`sys_exit_socket` alone, arguments from the saved \
         registers: no map work at all on a successful call), *tracepoint* and *kprobe* \
         (entry/exit pairs correlated through a hash map), *fexit* (where the kernel \
         allows BPF trampolines). The bpftrace peer that only counts failures is \
         `bpftrace -e '<program>'` with:\n\n",
    );
    writeln!(md, "```\n{BPFTRACE_PROGRAM}\n```\n")?;
    md.push_str(
        "The peer that does what the tapper does — one record per failure out to user \
         space — prints one line per failure (its output goes to a pipe the benchmark \
         reads):\n\n",
    );
    writeln!(md, "```\n{BPFTRACE_PRINTF_PROGRAM}\n```\n")?;
    md.push_str(
        "A third bpftrace program does what the pair modes do on every call — save the \
         arguments on entry in a hash keyed by thread, look them up and delete them on exit — \
         to separate the cost of that design from the cost of its implementation:\n\n",
    );
    writeln!(md, "```\n{BPFTRACE_CORRELATED_PROGRAM}\n```\n")?;
    for (title, outcome, part) in [
        ("On the host", host, "overhead-host"),
        ("In a VM (kprobe and fexit modes)", vm, "overhead-vm"),
    ] {
        writeln!(md, "### {title}\n")?;
        match outcome {
            Some(o) => table(md, o)?,
            None => writeln!(md, "Not measured: {}\n", skipped(dir, part))?,
        }
    }
    Ok(())
}

/// The line under a table's heading: where and how much was measured.
pub fn run_line(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    writeln!(
        md,
        "Kernel {}, {} CPUs; {} calls per loop, {} runs. Load average before/after: {} → {}.\n",
        o.machine.kernel,
        o.machine.cores,
        o.iters,
        o.runs,
        load_str(o.machine.load_before),
        load_str(o.machine.load_after)
    )?;
    Ok(())
}

fn table(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    conditions_table(md, o)?;
    targets(md, o)
}

/// The run's machine line, then ns per call of every condition measured, failing and
/// successful, each against the no-probe baseline of its run, then the tapper's drops.
pub fn conditions_table(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    run_line(md, o)?;
    if o.env == "vm" {
        md.push_str(
            "This kernel has kprobes and BPF trampolines (the host's has neither: \
             `CONFIG_KPROBES` is unset and fexit programs are refused, so those modes cannot \
             be measured on the host at all). The VM is pure software emulation (qemu TCG, \
             2 vCPUs, booted from an initramfs holding only static binaries), so absolute ns \
             are not comparable with the host's; only the comparison within the VM — added \
             ns and the ratio to its own no-probe baseline, measured in the same boot — means \
             anything. bpftrace is not measured in the VM: there is no static bpftrace to put \
             in the initramfs; the exit-only and tracepoint modes are the bridge between the \
             two tables.\n\n",
        );
    }
    md.push_str(
        "| condition | call | ns per call | added ns vs no probes | ratio vs no probes |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    let conds: Vec<Condition> = Condition::REPORT_ORDER
        .into_iter()
        .filter(|c| o.samples.iter().any(|s| s.condition == *c))
        .collect();
    for kind in [Kind::Fail, Kind::Ok] {
        for &c in &conds {
            let abs = overhead::absolute(o, c, kind);
            let (added, ratio) = overhead::added(o, c, kind);
            let (added, ratio) = if c == Condition::None {
                ("—".into(), "1".into())
            } else {
                (show(&added, 1), show(&ratio, 3))
            };
            let call = match kind {
                Kind::Fail => "failing",
                Kind::Ok => "successful",
            };
            writeln!(
                md,
                "| {} | {call} | {} | {added} | {ratio} |",
                c.label(),
                show(&abs, 1)
            )?;
        }
    }
    let drops: u64 = o.tapper_drops.iter().map(|d| d.2).sum();
    writeln!(
        md,
        "\nTapper ring-buffer drops during these loops (summed over runs): {drops}.\n"
    )?;
    Ok(())
}

/// The issue's targets for exit-only mode against bpftrace's counting one-liner: added
/// cost on a successful call at most the one-liner's, on a failing call at most 1.5 times.
fn targets(md: &mut String, o: &overhead::Outcome) -> Result<()> {
    let med = |c, kind| Summary::of(&overhead::added(o, c, kind).0).map(|s| s.median);
    let verdict = |met: bool| if met { "met" } else { "**not met**" };
    let (Some(ok), Some(peer_ok)) = (
        med(Condition::TapperExitOnly, Kind::Ok),
        med(Condition::Bpftrace, Kind::Ok),
    ) else {
        return Ok(());
    };
    writeln!(
        md,
        "Target (exit-only's added cost on a successful call ≤ the bpftrace one-liner's): {} \
         — median added {ok:.1} ns vs {peer_ok:.1} ns.",
        verdict(ok <= peer_ok)
    )?;
    if let (Some(fail), Some(peer_fail)) = (
        med(Condition::TapperExitOnly, Kind::Fail),
        med(Condition::Bpftrace, Kind::Fail),
    ) {
        writeln!(
            md,
            "Target (exit-only's added cost on a failing call ≤ 1.5 × the one-liner's): {} \
             — median added {fail:.1} ns vs 1.5 × {peer_fail:.1} = {:.1} ns.",
            verdict(fail <= 1.5 * peer_fail),
            1.5 * peer_fail
        )?;
        if let Some(printf) = med(Condition::BpftracePrintf, Kind::Fail) {
            writeln!(
                md,
                "bpftrace printing one line per failure adds {printf:.1} ns on a failing call \
                 ({:.2} × exit-only's).",
                printf / fail
            )?;
        }
    }
    md.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_part_one() {
        let report = "# Benchmarks\n\n## Machine\n\nm\n\n## 1. Syscall overhead\n\nold\n\n\
                      ### On the host\n\nold table\n\n## 2. Throughput\n\nkept\n";
        let new = "## 1. Syscall overhead\n\nnew\n\n";
        assert_eq!(
            splice(report, new).unwrap(),
            "# Benchmarks\n\n## Machine\n\nm\n\n## 1. Syscall overhead\n\nnew\n\n\
             ## 2. Throughput\n\nkept\n"
        );
        let last = "# B\n\n## 1. Syscall overhead\n\nold\n";
        assert_eq!(splice(last, new).unwrap(), format!("# B\n\n{new}"));
        assert!(splice("# B\n", new).is_err());
    }
}
