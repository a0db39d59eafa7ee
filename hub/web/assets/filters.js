// The view's filters, kept in the page's URL query under the API's own names
// (`?errno=EMFILE&namespace=shop`), so that a link reproduces the view.

/** The filter names the page and the API share. */
export const FILTER_NAMES = ["node", "namespace", "pod", "container", "comm", "pid", "errno", "kind"];

/** Page options kept in the URL too, never sent to the API. */
const PAGE_OPTIONS = ["cap"];

/** The filters of the current URL as URLSearchParams (only the filter names). */
export function currentFilters() {
  const all = new URLSearchParams(window.location.search);
  const filters = new URLSearchParams();
  for (const [name, value] of all) {
    if (FILTER_NAMES.includes(name) && value !== "") filters.append(name, value);
  }
  return filters;
}

/** A page option from the URL (e.g. "cap"), or `fallback`. */
export function pageOption(name, fallback) {
  const value = new URLSearchParams(window.location.search).get(name);
  return value === null ? fallback : value;
}

function write(filters) {
  const query = new URLSearchParams(filters);
  const all = new URLSearchParams(window.location.search);
  for (const name of PAGE_OPTIONS) {
    if (all.has(name)) query.set(name, all.get(name));
  }
  const text = query.toString();
  window.history.pushState(null, "", text ? `?${text}` : window.location.pathname);
}

/** Adds `name=value` unless already there; true when the URL changed. */
export function addFilter(name, value) {
  if (!FILTER_NAMES.includes(name) || value === "" || value === null || value === undefined) {
    return false;
  }
  const filters = currentFilters();
  if (filters.getAll(name).includes(String(value))) return false;
  filters.append(name, String(value));
  write(filters);
  return true;
}

/** Removes one `name=value`. */
export function removeFilter(name, value) {
  const filters = new URLSearchParams();
  for (const [n, v] of currentFilters()) {
    if (!(n === name && v === value)) filters.append(n, v);
  }
  write(filters);
}
