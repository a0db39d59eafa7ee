// The live table: a virtualized list with a fixed row height that keeps at most `cap` rows
// (newest on top) and puts only the visible ones in the DOM, reusing their elements. A
// render fills only the rows of entries new to the view (the others just move), writes only
// the texts that changed, and never reads layout (the scroll position and height are kept
// from the scroll event and a ResizeObserver).

const ROW_HEIGHT = 24;
const OVERSCAN = 6;

/** The cells of a row: [class, filter name or null]; "where" holds three filterable parts. */
const CELLS = [
  ["time", null], ["node", "node"], ["where", null], ["comm", "comm"], ["pid", "pid"],
  ["errno", "errno"], ["args", null], ["suppressed", null],
];

/** A cell whose text is one Text node, changed in place. */
function span(className, filter) {
  const el = document.createElement("span");
  el.className = `${className} empty`;
  if (filter) el.dataset.filter = filter;
  el.appendChild(document.createTextNode(""));
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
  cells.where.replaceChildren(span("ns", "namespace"), span("pod", "pod"), span("ctr", "container"));
  const [ns, pod, ctr] = cells.where.children;
  Object.assign(cells, { ns, pod, ctr });
  return { row, cells, entry: null, index: -1 };
}

/** Sets a cell's text and the value its click filters by, each only when it changed. */
function setCell(cell, text, value = text) {
  const node = cell.firstChild;
  if (node.data !== text) {
    node.data = text;
    cell.classList.toggle("empty", !text);
  }
  const v = value === null || value === undefined ? "" : String(value);
  if (cell.dataset.value !== v) cell.dataset.value = v;
}

function setFilter(cell, name) {
  if (cell.dataset.filter !== name) cell.dataset.filter = name;
}

/** Fills a pooled row element with one event or warning (text only). */
function fill({ row, cells }, entry) {
  const item = entry.item;
  const warning = entry.kind === "warning";
  row.classList.toggle("warning", warning);
  const ts = item.ts || item.received || "";
  setCell(cells.time, ts.length >= 23 ? ts.slice(11, 23) : ts);
  if (cells.time.title !== ts) cells.time.title = ts;
  setCell(cells.node, item.node || "");
  const pod = item.pod || {};
  const container = item.container || {};
  setCell(cells.ns, pod.namespace || "");
  setCell(cells.pod, pod.name || "");
  setCell(cells.ctr, container.name || "");
  setCell(cells.comm, item.comm || "");
  setCell(cells.pid, item.pid === null || item.pid === undefined ? "" : String(item.pid));
  if (warning) {
    setFilter(cells.errno, "kind");
    setCell(cells.errno, `⚠ ${item.kind}`, item.kind);
    setCell(cells.args, `${item.used} of ${item.limit} used`, "");
    setCell(cells.suppressed, "", "");
  } else {
    setFilter(cells.errno, "errno");
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
    this.scrollTop = 0;
    this.height = 0;
    this.spacerRows = -1;
    viewport.addEventListener("scroll", () => {
      this.scrollTop = viewport.scrollTop;
      this.render();
    });
    new ResizeObserver(([change]) => {
      this.height = change.contentRect.height;
      this.render();
    }).observe(viewport);
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
    for (const e of entries.length > this.cap ? entries.slice(-this.cap) : entries) {
      this.entries.push(e);
    }
    const over = this.entries.length - this.cap;
    if (over > 0) this.entries.splice(0, over);
    // Newest on top: when the reader has scrolled down, keep the same rows in view.
    if (this.scrollTop > 0) {
      this.scrollTop += entries.length * ROW_HEIGHT;
      this.viewport.scrollTop = this.scrollTop;
    }
    this.render();
  }

  clear() {
    this.entries = [];
    this.selected = null;
    this.scrollTop = 0;
    this.viewport.scrollTop = 0;
    this.render();
  }

  get length() {
    return this.entries.length;
  }

  /** Rows that fit in the view. */
  get pageRows() {
    return Math.ceil(this.height / ROW_HEIGHT);
  }

  render() {
    const total = this.entries.length;
    if (total !== this.spacerRows) {
      this.spacer.style.height = `${total * ROW_HEIGHT}px`;
      this.spacerRows = total;
    }
    const first = Math.max(0, Math.floor(this.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const visible = Math.ceil(this.height / ROW_HEIGHT) + 2 * OVERSCAN;
    const wanted = this.entries.slice(Math.max(0, total - first - visible), Math.max(0, total - first))
      .reverse();
    // A row whose entry stays in view keeps it and only moves; the others are refilled for
    // the entries new to the view and put in their place, so the DOM order stays the order
    // on screen.
    const inView = new Set(wanted);
    const kept = new Map();
    const free = [];
    for (const built of this.pool) {
      if (built.entry && inView.has(built.entry)) kept.set(built.entry, built);
      else free.push(built);
    }
    let cursor = this.spacer.nextSibling;
    wanted.forEach((entry, i) => {
      let built = kept.get(entry);
      if (!built) {
        built = free.pop() || this.newRow();
        fill(built, entry);
        built.entry = built.row.entry = entry;
      }
      const { row } = built;
      if (row === cursor) cursor = cursor.nextSibling;
      else this.viewport.insertBefore(row, cursor);
      if (row.hidden) row.hidden = false;
      const index = first + i;
      if (built.index !== index) {
        row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
        built.index = index;
      }
      row.classList.toggle("selected", entry.selected);
    });
    for (const built of free) {
      if (!built.row.hidden) built.row.hidden = true;
      built.entry = built.row.entry = null;
    }
  }

  newRow() {
    const built = buildRow();
    this.pool.push(built);
    this.viewport.appendChild(built.row);
    return built;
  }
}
