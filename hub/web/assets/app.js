// The page's entry: login when the hub needs a token, then the live tail (history first,
// then the live stream from where history ended), pause/resume, filters, detail and overview.

import * as api from "./api.js";
import { showDetail } from "./detail.js";
import { Entry } from "./entry.js";
import { FILTER_NAMES, addFilter, currentFilters, pageOption, removeFilter } from "./filters.js";
import { VirtualList } from "./list.js";
import { refreshOverview } from "./overview.js";

const HISTORY_WINDOW = "15m";
const HIGH_RATE_DRAW_MS = 100;
const $ = (id) => document.getElementById(id);

const state = {
  source: null,       // the live EventSource
  generation: 0,      // bumps on every (re)start, so late answers of an old view are ignored
  lastHubSeq: 0,      // the newest stored item shown: no duplicate across history and live
  pending: [],        // arrived, not yet drawn (drawn once per animation frame)
  paused: false,
  received: 0,        // items matching the view since it started (M of "N of M")
  lagged: 0,
  lost: 0,
  frame: 0,
  drawnAt: 0,         // when the list was last drawn (a frame's timestamp)
  overviewTimer: 0,
};

const cap = Math.max(1, Number.parseInt(pageOption("cap", "10000"), 10) || 10000);
const list = new VirtualList($("viewport"), $("spacer"), cap, onCellFilter,
  (entry) => showDetail($("detail"), entry));

function setStatus(text) {
  $("status").textContent = text;
  document.body.dataset.stream = text;
}

/** Sets an element's text (unless null) and visibility, each only when it changed. */
function show(id, text, visible = true) {
  const el = $(id);
  if (text !== null && el.textContent !== text) el.textContent = text;
  if (el.hidden === visible) el.hidden = !visible;
}

function updateCounts() {
  show("shown", `${list.length} of ${state.received} shown`);
  show("empty", null, list.length === 0);
  show("lagged", `lagged ${state.lagged}`);
  show("lost", `lost ${state.lost}`);
  show("buffered", `paused: ${state.pending.length} waiting`, state.paused);
}

/** Queues one stream or history entry with its hub_seq; drawing happens per frame unless
 * paused. */
function accept(entry, hubSeq, generation) {
  if (generation !== state.generation) return;
  if (hubSeq) {
    if (hubSeq <= state.lastHubSeq) return;
    state.lastHubSeq = hubSeq;
  }
  state.received += 1;
  state.pending.push(entry);
  schedule();
}

function schedule() {
  // Paused: what arrives waits (the newest `cap`, as the list would keep), only counted;
  // trimmed once it is twice that, so that an arrival costs no copy of the whole queue.
  if (state.pending.length >= 2 * cap) state.pending = state.pending.slice(-cap);
  if (!state.frame) state.frame = requestAnimationFrame(draw);
}

/** Draws what arrived: every frame, or at a rate that replaces the whole view each frame
 * (more than anyone reads), every HIGH_RATE_DRAW_MS. */
function draw(now) {
  state.frame = 0;
  if (state.paused) {
    if (state.pending.length > cap) state.pending = state.pending.slice(-cap);
  } else if (state.pending.length > list.pageRows && now - state.drawnAt < HIGH_RATE_DRAW_MS) {
    state.frame = requestAnimationFrame(draw);
    return;
  } else {
    const batch = state.pending;
    state.pending = [];
    state.drawnAt = now;
    list.append(batch);
  }
  updateCounts();
}

function itemKind(item) {
  if (item.warning) return ["warning", item.warning];
  if (item.loss) return ["loss", item.loss];
  if (item.lagged !== undefined) return ["lagged", item];
  return ["event", item];
}

function onLoss(loss, generation) {
  if (generation !== state.generation) return;
  if (loss.hub_seq) state.lastHubSeq = Math.max(state.lastHubSeq, loss.hub_seq);
  state.lost += Number(loss.count || 0);
  updateCounts();
}

function onLagged(item, generation) {
  if (generation !== state.generation) return;
  const n = typeof item.lagged === "object" ? item.lagged.skipped : item.lagged;
  state.lagged += Number(n || 0);
  updateCounts();
}

function stopStream() {
  state.generation += 1;
  if (state.source) state.source.close();
  state.source = null;
}

/** (Re)starts the view for the URL's filters: history first, then live from its end. */
async function startView() {
  stopStream();
  const generation = state.generation;
  Object.assign(state, { lastHubSeq: 0, pending: [], received: 0, lagged: 0, lost: 0 });
  list.clear();
  renderFilters();
  updateCounts();
  const filters = currentFilters();
  setStatus("loading history…");
  let next;
  try {
    next = await api.history(filters, HISTORY_WINDOW, cap, (items) => {
      for (const raw of items) {
        const [kind, item] = itemKind(raw);
        if (kind === "loss") onLoss(item, generation);
        else if (kind === "lagged") onLagged(item, generation);
        else accept(new Entry(kind, item), item.hub_seq, generation);
      }
    });
  } catch (err) {
    if (err instanceof api.Unauthorized) return showLogin();
    if (generation === state.generation) setStatus(`error: ${err.message}`);
    return;
  }
  if (generation !== state.generation) return;
  setStatus("following…");
  const since = Math.max(Number(next || 0), state.lastHubSeq + 1);
  state.source = api.follow(filters, since, {
    event: (json, hubSeq) => accept(Entry.streamed("event", json), hubSeq, generation),
    warning: (json, hubSeq) => accept(Entry.streamed("warning", json), hubSeq, generation),
    loss: (item) => onLoss(item.loss || item, generation),
    lagged: (item) => onLagged(item, generation),
    status: (text) => {
      if (generation !== state.generation) return;
      setStatus(text);
      if (text === "stream closed") signInAgainIfNeeded();
    },
  });
}

/** comm and pod filters are globs: a clicked value matches only itself. */
const GLOB_FILTERS = ["comm", "pod"];

/** A stream the hub ended (e.g. its token was revoked): back to the login form if so. */
async function signInAgainIfNeeded() {
  try {
    const session = await api.session();
    if (session.auth_required && !session.logged_in) showLogin();
  } catch (err) {
    setStatus(`error: ${err.message}`);
  }
}

function onCellFilter(name, value) {
  const exact = GLOB_FILTERS.includes(name) ? value.replace(/[\\*?[\]]/g, "\\$&") : value;
  if (addFilter(name, exact)) startView();
}

function renderFilters() {
  const chips = [];
  for (const [name, value] of currentFilters()) {
    const chip = document.createElement("li");
    chip.className = "chip";
    chip.textContent = `${name}=${value} `;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.title = `remove ${name}=${value}`;
    remove.addEventListener("click", () => {
      removeFilter(name, value);
      startView();
    });
    chip.appendChild(remove);
    chips.push(chip);
  }
  $("filters").replaceChildren(...chips);
  $("view-link").href = window.location.href;
}

function togglePause() {
  state.paused = !state.paused;
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  document.body.classList.toggle("paused", state.paused);
  schedule();
}

function showTab(name) {
  const overview = name === "overview";
  $("live").hidden = overview;
  $("overview").hidden = !overview;
  $("tab-live").classList.toggle("active", !overview);
  $("tab-overview").classList.toggle("active", overview);
  clearInterval(state.overviewTimer);
  if (overview) {
    const refresh = () => refreshOverview(currentFilters(), Number($("range").value));
    refresh();
    state.overviewTimer = setInterval(refresh, 5000);
  }
}

function showLogin() {
  stopStream();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  setStatus("signed out");
  $("login-token").focus();
}

async function showApp(authRequired) {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = !authRequired;
  await startView();
}

function wire() {
  const select = $("filter-name");
  select.replaceChildren(...FILTER_NAMES.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    return option;
  }));
  $("filter-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const value = $("filter-value").value.trim();
    if (addFilter(select.value, value)) startView();
    $("filter-value").value = "";
  });
  $("pause").addEventListener("click", togglePause);
  $("tab-live").addEventListener("click", () => showTab("live"));
  $("tab-overview").addEventListener("click", () => showTab("overview"));
  $("range").addEventListener("change", () => showTab("overview"));
  window.addEventListener("popstate", () => startView());
  // Leaving the page frees its stream's connection at once (browsers allow six per host).
  window.addEventListener("pagehide", stopStream);
  $("login-form").addEventListener("submit", async (submit) => {
    submit.preventDefault();
    $("login-error").textContent = "";
    try {
      await api.login($("login-token").value);
      $("login-token").value = "";
      await showApp(true);
    } catch (err) {
      $("login-error").textContent = err instanceof api.Unauthorized
        ? "That token was refused: use a read or admin token." : err.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    try { await api.logout(); } finally { list.clear(); showLogin(); }
  });
}

async function main() {
  wire();
  try {
    const session = await api.session();
    if (session.auth_required && !session.logged_in) showLogin();
    else await showApp(session.auth_required);
  } catch (err) {
    setStatus(`error: ${err.message}`);
  }
}

main();
