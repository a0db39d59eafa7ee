// The event detail pane: why the call failed (the tapper's diagnosis), what the errno means,
// the call's arguments by name, the process, its container and pod (with labels), quota and
// limits, and the user stack.

import { explain } from "./errno.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const shown = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));

/** A titled list of name/value pairs. */
function section(title, pairs) {
  const box = el("section", "fields");
  box.appendChild(el("h3", null, title));
  const list = el("dl");
  for (const [name, value] of pairs) {
    list.appendChild(el("dt", null, name));
    list.appendChild(el("dd", null, shown(value)));
  }
  box.appendChild(list);
  return box;
}

const hex = (n) => (typeof n === "number" ? `0x${n.toString(16)}` : shown(n));

function stack(frames) {
  const box = el("section", "fields stack");
  box.appendChild(el("h3", null, `User stack (${frames.length} frames)`));
  const list = el("ol");
  for (const f of frames) {
    const where = f.module ? `${f.module}+${hex(f.offset)}` : "";
    list.appendChild(el("li", null, [hex(f.address), f.symbol || "?", where].join("  ")));
  }
  box.appendChild(list);
  return box;
}

/** The diagnosis (cause and its sentence of evidence), as plain text; none from a reporter
 * that does not diagnose. */
function diagnosis(d) {
  const box = section("Why", d ? [["cause", d.cause], ["evidence", d.text]] : [["cause", "not diagnosed"]]);
  box.classList.add("diagnosis");
  return box;
}

function eventSections(e) {
  const pod = e.pod || {};
  const container = e.container || {};
  const quota = e.quota || {};
  const limits = e.limits || {};
  const labels = Object.entries(pod.labels || {}).map(([k, v]) => [k, v]);
  const meaning = explain(e.errno_name);
  const parts = [
    diagnosis(e.diagnosis),
    section(`socket() failed: ${shown(e.errno_name)} (${shown(e.errno)})`, [
      ["message", e.message],
      ["means", meaning ? meaning.meaning : "no description for this errno"],
      ["usually caused by", meaning ? meaning.causes : "—"],
    ]),
    section("Arguments", [
      ["domain (family)", `${shown(e.family_name)} (${shown(e.family)})`],
      ["type", `${shown(e.type_name)} (${shown(e.type)})`],
      ["protocol", `${shown(e.protocol_name)} (${shown(e.protocol)})`],
      ["duration", e.duration_ns === null || e.duration_ns === undefined ? null : `${e.duration_ns} ns`],
      ["suppressed since last", e.suppressed],
    ]),
    section("Process", [
      ["comm", e.comm], ["pid", e.pid], ["tid", e.tid], ["ppid", e.ppid], ["uid", e.uid],
      ["gid", e.gid], ["exe", e.exe], ["cmdline", e.cmdline],
    ]),
    section("Container", [
      ["name", container.name], ["id", container.id], ["runtime", container.runtime],
      ["image", container.image], ["cgroup", e.cgroup_path], ["cgroup id", e.cgroup_id],
    ]),
    section("Pod", [["namespace", pod.namespace], ["name", pod.name], ["uid", pod.uid]]),
    section("Pod labels", labels.length ? labels : [["(none)", ""]]),
    section("Limits and quota", [
      ["nofile soft", limits.nofile_soft], ["nofile hard", limits.nofile_hard],
      ["open fds", limits.open_fds], ["memory max", quota.memory_max],
      ["memory current", quota.memory_current], ["pids max", quota.pids_max],
      ["pids current", quota.pids_current], ["file-nr", quota.file_nr],
      ["file-max", quota.file_max],
    ]),
  ];
  if (e.user_stack && e.user_stack.length) parts.push(stack(e.user_stack));
  parts.push(section("Hub", [
    ["node", e.node], ["instance", e.instance_id], ["tapper seq", e.seq],
    ["hub seq", e.hub_seq], ["time", e.ts], ["received", e.received], ["probe", e.probe],
    ["truncated", (e.truncated || []).join(", ")],
  ]));
  return parts;
}

function warningSections(w) {
  const pod = w.pod || {};
  const container = w.container || {};
  return [
    diagnosis(w.diagnosis),
    section(`Warning: ${shown(w.kind)}`, [
      ["used", w.used], ["limit", w.limit],
      ["ratio", typeof w.ratio === "number" ? `${(w.ratio * 100).toFixed(1)} %` : w.ratio],
      ["exhausted in", typeof w.eta_seconds === "number" ? `${Math.round(w.eta_seconds)} s` : null],
    ]),
    section("Process", [["comm", w.comm], ["pid", w.pid], ["exe", w.exe]]),
    section("Container and pod", [
      ["container", container.name], ["namespace", pod.namespace], ["pod", pod.name],
    ]),
    section("Hub", [["node", w.node], ["hub seq", w.hub_seq], ["time", w.ts],
      ["received", w.received]]),
  ];
}

/** Shows `entry` ({kind, item}) in `pane`. */
export function showDetail(pane, entry) {
  const parts = entry.kind === "warning" ? warningSections(entry.item) : eventSections(entry.item);
  pane.replaceChildren(...parts);
}
