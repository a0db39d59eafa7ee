// One row of the list: its kind ("event" or "warning") and its item, which a streamed row
// keeps as the stream's JSON text and parses only when it is first drawn or shown.

export class Entry {
  constructor(kind, item, json = null) {
    this.kind = kind;
    this.parsed = item;
    this.json = json;
    this.selected = false;
  }

  /** A streamed row from its `data:` JSON (parsed later, if ever). */
  static streamed(kind, json) {
    return new Entry(kind, null, json);
  }

  get item() {
    if (this.parsed === null) {
      try {
        const value = JSON.parse(this.json);
        this.parsed = this.kind === "warning" && value.warning ? value.warning : value;
      } catch {
        this.parsed = { comm: "(unreadable item)" };
      }
      this.json = null;
    }
    return this.parsed;
  }
}
