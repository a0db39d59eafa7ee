// The live table: a virtualized list with a fixed row height that keeps at most `cap` rows
// (newest on top) and puts only the visible ones in the DOM, reusing their elements.

const ROW_HEIGHT = 24;
const OVERSCAN = 6;

/** The cells of a row: [class, filter name or null]; "where" holds three filterable parts. */
const CELLS = [
  ["time", null], ["node", "node"], ["where", null], ["comm", "comm"], ["pid", "pid"],
  ["errno", "errno"], ["args", null], ["suppressed", null],
];

function span(className, filter) {
  const el = document.createElement("span");
  el.className = className;
  if (filter) el.dataset.filter = filter;
  return el;
}

function buildRow() {
  const row = document.createElement("div");
  row.className = "row item";
  const cells = {};
  for (const [name, filter] of CELLS) {
    const cell = span(`cell ${name}`, filter);
    row.appendChild(cell);
    cells[name] = cell;
  }
  cells.time.dataset.detail = "1";
  cells.time.title = "show this event";
  cells.where.replaceChildren(span("ns", "namespace"), span("pod", "pod"), span("ctr", "container"));
  return { row, cells };
}

function setCell(cell, text, value = text) {
  cell.textContent = text;
  cell.dataset.value = value === null || value === undefined ? "" : String(value);
  cell.classList.toggle("empty", !text);
}

/** Fills a pooled row element with one event or warning (textContent only). */
function fill({ row, cells }, entry) {
  const item = entry.item;
  const warning = entry.kind === "warning";
  row.classList.toggle("warning", warning);
  row.classList.toggle("selected", entry.selected === true);
  const ts = item.ts || item.received || "";
  setCell(cells.time, ts.length >= 23 ? ts.slice(11, 23) : ts);
  cells.time.title = ts;
  setCell(cells.node, item.node || "");
  const pod = item.pod || {};
  const container = item.container || {};
  const [ns, podName, ctr] = cells.where.children;
  setCell(ns, pod.namespace || "");
  setCell(podName, pod.name || "");
  setCell(ctr, container.name || "");
  setCell(cells.comm, item.comm || "");
  setCell(cells.pid, item.pid === null || item.pid === undefined ? "" : String(item.pid));
  if (warning) {
    cells.errno.dataset.filter = "kind";
    setCell(cells.errno, `⚠ ${item.kind}`, item.kind);
    setCell(cells.args, `${item.used} of ${item.limit} used`, "");
    setCell(cells.suppressed, "", "");
  } else {
    cells.errno.dataset.filter = "errno";
    setCell(cells.errno, item.errno_name || String(item.errno));
    const args = [item.family_name ?? item.family, item.type_name ?? item.type,
      item.protocol_name ?? item.protocol].map((a) => (a === null || a === undefined ? "?" : a));
    setCell(cells.args, args.join(" / "), "");
    setCell(cells.suppressed, item.suppressed ? String(item.suppressed) : "", "");
  }
}

export class VirtualList {
  /**
   * `viewport` scrolls, `spacer` gives it the full height; `onFilter(name, value)` when a
   * filterable cell is clicked, `onSelect(entry)` when a row's time is.
   */
  constructor(viewport, spacer, cap, onFilter, onSelect) {
    this.viewport = viewport;
    this.spacer = spacer;
    this.cap = cap;
    this.entries = [];
    this.pool = [];
    this.selected = null;
    viewport.addEventListener("scroll", () => this.render());
    window.addEventListener("resize", () => this.render());
    viewport.addEventListener("click", (click) => {
      const target = click.target.closest("[data-filter],[data-detail]");
      const row = click.target.closest(".item");
      if (!target || !row || !row.entry) return;
      if (target.dataset.detail) {
        if (this.selected) this.selected.selected = false;
        this.selected = row.entry;
        row.entry.selected = true;
        onSelect(row.entry);
        this.render();
      } else if (target.dataset.value) {
        onFilter(target.dataset.filter, target.dataset.value);
      }
    });
  }

  /** Appends entries (oldest first); drops the oldest beyond the cap. */
  append(entries) {
    if (entries.length === 0) return;
    const before = this.entries.length;
    for (const e of entries) this.entries.push(e);
    const over = this.entries.length - this.cap;
    if (over > 0) this.entries.splice(0, over);
    // Newest on top: when the reader has scrolled down, keep the same rows in view.
    const added = this.entries.length - before + Math.max(over, 0);
    if (this.viewport.scrollTop > 0) this.viewport.scrollTop += added * ROW_HEIGHT;
    this.render();
  }

  clear() {
    this.entries = [];
    this.selected = null;
    this.viewport.scrollTop = 0;
    this.render();
  }

  get length() {
    return this.entries.length;
  }

  render() {
    const total = this.entries.length;
    this.spacer.style.height = `${total * ROW_HEIGHT}px`;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const visible = Math.ceil(this.viewport.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(total, first + visible);
    while (this.pool.length < last - first) {
      const built = buildRow();
      this.pool.push(built);
      this.viewport.appendChild(built.row);
    }
    this.pool.forEach((built, i) => {
      const index = first + i;
      if (index >= last) {
        built.row.hidden = true;
        built.row.entry = null;
        return;
      }
      const entry = this.entries[total - 1 - index];
      built.row.hidden = false;
      built.row.entry = entry;
      built.row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      fill(built, entry);
    });
  }
}
