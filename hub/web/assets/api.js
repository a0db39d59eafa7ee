// The hub's HTTP API (api/v1), addressed relative to the page so that a --web-base-path
// prefix works: JSON calls, the session, and the replay-then-follow event stream.

/** Raised when the hub answers 401: the page then asks for a token. */
export class Unauthorized extends Error {}

/** An absolute URL for `path` (e.g. "api/v1/events") under the page's base path. */
function apiUrl(path, params) {
  const url = new URL(path, document.baseURI);
  if (params) url.search = params.toString();
  return url;
}

async function call(method, path, params, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(apiUrl(path, params), init);
  if (response.status === 401) throw new Unauthorized("a token is needed");
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    const message = json && json.error ? json.error : `${response.status} ${response.statusText}`;
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return json;
}

/** GET a JSON endpoint. */
export const getJson = (path, params) => call("GET", path, params);

/** {auth_required, logged_in}; answered without a token. */
export const session = () => call("GET", "api/v1/session");

/** Trades a token for the session cookie. */
export const login = (token) => call("POST", "api/v1/session", undefined, { token });

/** Drops the session cookie. */
export const logout = () => call("DELETE", "api/v1/session");

/**
 * Stored items matching `filters` (URLSearchParams), oldest first, in pages; calls
 * `onPage(items)` per page and resolves with the hub_seq where live following continues.
 * The first page starts at `since` (e.g. "15m"); later ones continue at next_hub_seq.
 * Stops after `maxItems` (the caller keeps only the newest anyway).
 */
export async function history(filters, since, maxItems, onPage) {
  let next = null;
  let fetched = 0;
  for (;;) {
    const params = new URLSearchParams(filters);
    if (next === null) params.set("since", since);
    else params.set("since_hub_seq", String(next));
    params.set("limit", "1000");
    const page = await getJson("api/v1/events", params);
    onPage(page.items || []);
    fetched += (page.items || []).length;
    next = page.next_hub_seq;
    if (!page.more || fetched >= maxItems) return next;
  }
}

/**
 * Follows live items from `sinceHubSeq` on as Server-Sent Events; `handlers` has
 * event/warning(json, hubSeq) with the item's JSON text (parsed when needed), loss/lagged(item)
 * and status(text). The browser's EventSource reconnects by itself and resumes after the last
 * id it saw. Returns the EventSource (close() to stop).
 */
export function follow(filters, sinceHubSeq, handlers) {
  const params = new URLSearchParams(filters);
  params.set("follow", "true");
  if (sinceHubSeq !== null && sinceHubSeq !== undefined) {
    params.set("since_hub_seq", String(sinceHubSeq));
  }
  const source = new EventSource(apiUrl("api/v1/events", params));
  for (const type of ["event", "warning"]) {
    source.addEventListener(type, (message) => {
      handlers[type](message.data, Number(message.lastEventId) || 0);
    });
  }
  for (const type of ["loss", "lagged"]) {
    source.addEventListener(type, (message) => {
      let item;
      try { item = JSON.parse(message.data); } catch { return; }
      handlers[type](item);
    });
  }
  source.onopen = () => handlers.status("live");
  source.onerror = () => handlers.status(
    source.readyState === EventSource.CLOSED ? "stream closed" : "reconnecting…");
  return source;
}
