// The usage dashboard (API.md §16): plain ES module, no build step. It
// reads the public API with the credentials the user typed, kept in
// sessionStorage and sent as an Authorization header (no cookies, so no
// CSRF surface). Every value from the API goes into the page as text.
import uPlot from "/ui/assets/vendor/uplot/uPlot.esm.js";

const AUTH_KEY = "lc.authorization";
const REFRESH_MS = 30_000;
const RANGES = { "24h": 1, "7d": 7, "30d": 30, "90d": 90 };
// Finer buckets for the last day (a multiple of every usual sampling
// interval); the other ranges take the API's default (hourly up to 7
// days, daily beyond).
const GRANULARITY = { "24h": 15 };
const STATUS_TEXT = { ACTIVE: "a valid licence", LIMITED: "a trial or lite licence", EXPIRED: "expired: no units" };
const SOON_DAYS = 30;

const $ = (id) => document.getElementById(id);

// el builds an element: el("td", {class: "num"}, "42", child…).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fill(id, ...children) {
  const box = $(id);
  box.classList.remove("muted");
  box.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const state = {
  auth: sessionStorage.getItem(AUTH_KEY),
  account: null, // {id, name}
  principal: null, // {name, kind, role, permissions[]}
  range: "24h",
  timer: null,
  chart: null,
  allocations: [],
};

class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, opts = {}) {
  const headers = { Accept: "application/json", Authorization: state.auth };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: opts.method || "GET",
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) throw new APIError(res.status, body);
  return body;
}

// tryAPI answers null where the caller lacks the permission or the
// resource does not exist (no licence yet): the page shows what it can.
async function tryAPI(path) {
  try { return await api(path); } catch (e) {
    if (e.status === 401) throw e;
    if (e.status === 403 || e.status === 404) return null;
    throw e;
  }
}

const can = (perm) => !!state.principal && state.principal.permissions.includes(perm);
const lv1 = () => `/controller/licensing/v1/account/${state.account.id}`;

function base64UTF8(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

// ---- sign-in -------------------------------------------------------------

function showSignIn(message) {
  stopRefresh();
  $("dashboard").hidden = true;
  $("signout").hidden = $("refresh").hidden = true;
  $("who").textContent = $("updated").textContent = "";
  $("signin").hidden = false;
  const err = $("signin-error");
  err.hidden = !message;
  err.textContent = message || "";
}

async function signIn(ev) {
  ev.preventDefault();
  const login = $("login").value.trim(), password = $("password").value, token = $("token").value.trim();
  if (!token && (!login || !password)) {
    showSignIn("Enter user@account and password, or an API token.");
    return;
  }
  state.auth = token ? "Bearer " + token.replace(/^Bearer\s+/i, "") : "Basic " + base64UTF8(login + ":" + password);
  try {
    await start();
    sessionStorage.setItem(AUTH_KEY, state.auth);
    $("password").value = $("token").value = "";
  } catch (e) {
    state.auth = null;
    showSignIn(e.status === 401 ? "Wrong user, account or password (or the token expired)." : "Sign-in failed: " + e.message);
  }
}

// signOut forgets the credentials and everything shown with them.
function signOut() {
  sessionStorage.removeItem(AUTH_KEY);
  state.auth = state.account = state.principal = null;
  state.allocations = [];
  if (state.chart) { state.chart.destroy(); state.chart = null; }
  for (const id of ["licence-body", "refusals-body", "allocations-body", "rules-body", "top-apps", "top-hosts"]) {
    $(id).classList.add("muted");
    $(id).replaceChildren("Loading…");
  }
  $("links").replaceChildren();
  $("chart").dataset.points = "0";
  $("signin-form").reset();
  showSignIn("");
}

async function start() {
  state.account = await api("/controller/api/accounts/myaccount");
  state.principal = await api("/controller/api/accounts/myaccount/principal");
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("signout").hidden = $("refresh").hidden = false;
  $("who").textContent = `${state.principal.name}@${state.account.name} (${state.principal.role})`;
  renderLinks();
  await refresh();
  stopRefresh();
  state.timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
}

function stopRefresh() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

async function refresh() {
  const jobs = [loadLicence(), loadAllocations(), loadRules(), loadChart(), loadTop(), loadRefusals()];
  const results = await Promise.allSettled(jobs);
  const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  if (failed.some((e) => e && e.status === 401)) {
    signOut();
    showSignIn("Your session ended: sign in again.");
    return;
  }
  const err = $("load-error");
  err.hidden = failed.length === 0;
  err.textContent = failed.length ? "Some figures could not be loaded: " + failed.map((e) => e.message).join("; ") : "";
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// ---- licence --------------------------------------------------------------

function daysLeft(iso) {
  return Math.floor((new Date(iso).getTime() - Date.now()) / 86_400_000);
}

async function loadLicence() {
  const info = await tryAPI(`${lv1()}/info`);
  if (!info) { fill("licence-body", el("p", { class: "muted" }, "No licence.")); return; }
  const left = daysLeft(info.expirationDate);
  const rows = (info.packages || []).map((p) => el("tr", {}, el("td", {}, p.packageName), el("td", { class: "num" }, p.licenseUnits)));
  fill("licence-body",
    el("p", {}, el("span", { id: "licence-status", class: "status " + info.status, title: STATUS_TEXT[info.status] || "" }, info.status),
      " · ", info.type || "", " · licence ", el("code", {}, info.licenseId || "")),
    el("p", { id: "licence-expiry", class: left < SOON_DAYS ? "soon" : "" },
      left < 0 ? `expired on ${new Date(info.expirationDate).toLocaleDateString()}`
        : `expires ${new Date(info.expirationDate).toLocaleDateString()} (${left} days left)`),
    info.overAllocated ? el("p", { class: "error" }, "Over-allocated: the allocations hold more units than the licence.") : null,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Package"), el("th", { class: "num" }, "Units"))), el("tbody", {}, rows)));
}

// ---- allocations ----------------------------------------------------------

function filterText(f) {
  const what = f.type === "APPLICATION" ? "application" : "host";
  const op = { ID_EQUALS: "id is", EQUALS: "is", STARTS_WITH: "starts with", ENDS_WITH: "ends with", CONTAINS: "contains", REGEX: "matches" }[f.operator] || f.operator;
  return `${what} ${op} ${f.value}`;
}

function filtersText(fs) {
  if (!fs || fs.length === 0) return "every agent";
  const by = (t) => fs.filter((f) => f.type === t).map(filterText).join(" or ");
  return [by("APPLICATION"), by("HOST")].filter(Boolean).join(", and ");
}

function bar(pkg, used, limit, exhaustsAt) {
  const pct = limit > 0 ? Math.round((used * 100) / limit) : (used > 0 ? 100 : 0);
  const cls = pct >= 100 ? "full" : pct >= 80 ? "high" : "";
  const fillBar = el("span", { class: cls });
  fillBar.style.width = Math.min(pct, 100) + "%";
  return el("div", { class: "bar-row", dataset: { package: pkg, used: String(used), limit: String(limit), percent: String(pct) } },
    el("span", {}, pkg),
    el("div", { class: "bar", role: "img", "aria-label": `${pkg} ${used} of ${limit} units` }, fillBar),
    el("span", { class: "num" }, `${used} / ${limit} (${pct} %)`,
      exhaustsAt ? el("span", { class: "warn small" }, ` · full by ${new Date(exhaustsAt).toLocaleDateString()}`) : null));
}

async function loadAllocations() {
  // Live used and limit per package come with the list; forecasts add
  // when a package runs out at the current trend.
  const [allocs, lint] = await Promise.all([api(`${lv1()}/allocation?includeUsage=true`), tryAPI(`${lv1()}/allocation/lint`)]);
  const forecasts = await Promise.all(allocs.map((a) => tryAPI(`${lv1()}/allocation/${a.id}/forecast`)));
  state.allocations = allocs;
  const findings = lint || [];
  const items = allocs.map((a, i) => {
    const exhausts = {};
    for (const p of (forecasts[i] && forecasts[i].packages) || []) exhausts[p.package] = p.exhaustsAt;
    // A package the allocation neither has nor uses is no bar.
    const pkgs = (a.usage || []).filter((u) => u.limit > 0 || u.used > 0).map((u) => ({ ...u, exhaustsAt: exhausts[u.package] }));
    const own = findings.filter((f) => (f.allocations || []).includes(a.id));
    return el("div", { class: "alloc", dataset: { allocation: a.name, id: a.id } },
      el("div", { class: "alloc-head" },
        el("span", { class: "alloc-name" }, a.name),
        a.disabled ? el("span", { class: "warn small" }, "disabled") : null,
        (a.tags || []).map((t) => el("span", { class: "tag" }, t)),
        el("span", { class: "muted small" }, a.name === "Default" ? "everything the other allocations do not take" : filtersText(a.filters)),
        can("LICENSE_RULE_WRITE") && a.name !== "Default"
          ? el("button", { type: "button", class: "secondary small edit", onclick: () => editLimits(a) }, "Edit limits") : null),
      pkgs.map((p) => bar(p.package, p.used, p.limit, p.exhaustsAt)),
      own.map((f) => el("p", { class: "finding " + (f.severity === "error" ? "error" : "warn"), dataset: { code: f.code } }, `${f.code}: ${f.message}`)));
  });
  fill("allocations-body", items.length ? items : el("p", { class: "muted" }, "No allocations."));
  const scope = $("chart-scope"), current = scope.value;
  scope.replaceChildren(el("option", { value: "" }, "Account"),
    allocs.map((a) => el("option", { value: a.licenseKey, selected: a.licenseKey === current }, a.name)));
}

function editLimits(a) {
  const row = document.querySelector(`.alloc[data-id="${CSS.escape(a.id)}"]`);
  if (!row || row.querySelector(".edit-form")) return;
  const inputs = ["INFRA", "PREMIUM", "ENTERPRISE"].map((pkg) => {
    const cur = (a.limits || []).find((l) => l.package === pkg);
    return el("label", {}, pkg, " ", el("input", { type: "number", min: "0", step: "1", name: pkg, value: cur ? cur.units : "" }));
  });
  const msg = el("span", { class: "error small", role: "alert" });
  const form = el("form", { class: "edit-form" }, inputs, el("button", { type: "submit" }, "Save"),
    el("button", { type: "button", class: "secondary", onclick: () => form.remove() }, "Cancel"), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const limits = [];
    for (const input of form.querySelectorAll("input")) {
      if (input.value !== "") limits.push({ package: input.name, units: Number(input.value) });
    }
    const body = { name: a.name, fallbackModeDelay: a.fallbackModeDelay, machineAgentPriority: a.machineAgentPriority,
      disabled: a.disabled, filters: (a.filters || []).map(({ type, operator, value }) => ({ type, operator, value })), limits, tags: a.tags || [] };
    try {
      await api(`${lv1()}/allocation/${a.id}`, { method: "PUT", body });
      await refresh();
    } catch (e) {
      msg.textContent = e.message;
    }
  });
  row.append(form);
}

// ---- licence rules --------------------------------------------------------

async function loadRules() {
  const rules = await tryAPI("/controller/mds/v1/license/rules?includeUsage=true");
  if (!rules || rules.length === 0) {
    fill("rules-body", el("p", { class: "muted" }, rules ? "No agent-based licence rules." : "Licence rules are not available to this user."));
    return;
  }
  fill("rules-body", rules.map((r) => el("div", { class: "alloc", dataset: { rule: r.name } },
    el("div", { class: "alloc-head" }, el("span", { class: "alloc-name" }, r.name),
      r.enabled ? null : el("span", { class: "warn small" }, "disabled"),
      el("span", { class: "muted small" }, `peak ${r.peak_usage ?? 0} of ${r.total_licenses}`)),
    (r.usage || []).map((u) => bar(u.package, u.used, u.limit, null)))));
}

// ---- chart ------------------------------------------------------------------

function seriesPath(licenseKey, from, to, granularity) {
  const q = new URLSearchParams({ dateFrom: from.toISOString().replace(/\.\d+Z$/, "Z"), dateTo: to.toISOString().replace(/\.\d+Z$/, "Z") });
  if (granularity) q.set("granularityMinutes", String(granularity));
  const scope = licenseKey ? `/allocation/${encodeURIComponent(licenseKey)}` : "";
  return `/controller/licensing/v1/usage/account/${state.account.id}${scope}?${q}`;
}

async function loadChart() {
  const to = new Date(), from = new Date(to.getTime() - RANGES[state.range] * 86_400_000);
  const key = $("chart-scope").value;
  let data;
  try {
    data = await api(seriesPath(key, from, to, GRANULARITY[state.range]));
  } catch (e) {
    // A sampling interval the finer buckets are no multiple of: the default.
    if (e.status !== 400 || !GRANULARITY[state.range]) throw e;
    data = await api(seriesPath(key, from, to));
  }
  const pkgSel = $("chart-package");
  const names = (data.packages || []).map((p) => p.name);
  // Until the user picks one: the package most in use.
  const busiest = (data.packages || []).map((p) => {
    const u = p.unitUsages.find((x) => x.usageType === "LICENSE_UNIT");
    return [p.name, u ? Math.max(0, ...u.data.map((d) => d.used.max)) : 0];
  }).sort((a, b) => b[1] - a[1])[0];
  const wanted = pkgSel.dataset.chosen || (busiest ? busiest[0] : "");
  pkgSel.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === wanted }, n)));
  const pkg = (data.packages || []).find((p) => p.name === pkgSel.value) || (data.packages || [])[0];
  const unit = pkg && pkg.unitUsages.find((u) => u.usageType === "LICENSE_UNIT");
  const points = unit ? unit.data : [];
  const xs = points.map((d) => Date.parse(d.timestamp) / 1000);
  const provisioned = points.map((d) => d.provisioned.max), used = points.map((d) => d.used.max);
  const box = $("chart");
  box.dataset.points = String(points.length);
  box.dataset.range = state.range;
  $("chart-empty").hidden = points.length > 0;
  const step = unit ? unit.granularityInMinutes : 0;
  $("chart-note").textContent = step ? `one point per ${step >= 1440 ? step / 1440 + " day(s)" : step + " minutes"}: ` +
    "the highest value sampled in it (the service samples usage every few minutes)" : "";
  if (state.chart) { state.chart.destroy(); state.chart = null; }
  if (!points.length) return;
  const width = chartWidth();
  state.chart = new uPlot({
    width, height: width < 500 ? 240 : 320,
    series: [{}, { label: "provisioned", stroke: "#667085", width: 1.5, dash: [6, 4] },
      { label: "used", stroke: "#2563eb", width: 2, fill: "rgba(37,99,235,0.12)" }],
    axes: [{}, { label: pkg.name + " units" }],
    // The whole window on the x axis, so that the first points sit where they belong.
    scales: { x: { time: true, range: () => [from.getTime() / 1000, to.getTime() / 1000] },
      y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
    cursor: { points: { size: 6 } },
  }, [xs, provisioned, used], box);
}

function chartWidth() {
  return Math.max(260, $("chart").clientWidth || 600);
}

// The chart follows its box when the window is resized.
new ResizeObserver(() => {
  if (state.chart) {
    const w = chartWidth();
    if (Math.abs(w - state.chart.width) > 4) state.chart.setSize({ width: w, height: w < 500 ? 240 : 320 });
  }
}).observe($("chart"));

// ---- top applications and hosts ---------------------------------------------

async function loadTop() {
  const apps = await tryAPI(`/controller/api/accounts/${state.account.id}/applications`);
  const ids = ((apps && apps.applications) || []).slice(0, 1000).map((a) => a.id);
  if (!ids.length) {
    fill("top-apps", el("p", { class: "muted" }, "No applications yet."));
    fill("top-hosts", el("p", { class: "muted" }, "No hosts yet."));
    return;
  }
  const q = new URLSearchParams();
  ids.forEach((id) => q.append("appId", id));
  const usage = await api(`${lv1()}/grouped-usage/application/by-id?${q}`);
  const items = Object.values(usage.items || {}).sort((a, b) => b.vCpu - a.vCpu || a.appName.localeCompare(b.appName));
  const hosts = new Map();
  for (const app of items) {
    for (const h of Object.values((app.hosts && app.hosts.items) || {})) hosts.set(h.host, h.vCpu);
  }
  const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true });
  const top = (rows, head) => [el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, head), el("th", { class: "num" }, "vCPU"))),
    el("tbody", {}, rows.slice(0, 10).map(([n, v]) => el("tr", {}, el("td", {}, n), el("td", { class: "num" }, v))))),
    rows.length > 10 ? el("p", { class: "muted small" }, `top 10 of ${rows.length}`) : null];
  fill("top-apps", top(items.map((a) => [a.appName, a.vCpu]).sort((a, b) => b[1] - a[1] || byName(a[0], b[0])), "Application"));
  fill("top-hosts", top([...hosts.entries()].sort((a, b) => b[1] - a[1] || byName(a[0], b[0])), "Host"));
}

// ---- refusals -----------------------------------------------------------------

async function loadRefusals() {
  const since = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
  const r = await tryAPI(`${lv1()}/analytics/rejections?startDate=${encodeURIComponent(since)}`);
  if (!r) { fill("refusals-body", el("p", { class: "muted" }, "Analytics are not available to this user.")); return; }
  const groups = [["No more units", r.noMoreUnits], ["Package not licensed", r.packageNotLicensed], ["Denied by filter", r.deniedByFilter], ["Other", r.other]];
  const rows = [];
  for (const [reason, gs] of groups) {
    for (const g of gs || []) {
      rows.push(el("tr", {}, el("td", {}, reason), el("td", {}, g.requestKey.pool || "—"), el("td", {}, g.requestKey.agentType),
        el("td", { class: "num" }, g.responseStatistics.count), el("td", { class: "num" }, g.responseStatistics.hostCount)));
    }
  }
  fill("refusals-body", rows.length
    ? el("table", { id: "refusals-table" }, el("thead", {}, el("tr", {}, el("th", {}, "Reason"), el("th", {}, "Pool"), el("th", {}, "Agent"),
      el("th", { class: "num" }, "Refusals"), el("th", { class: "num" }, "Hosts"))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "None: every agent that asked got a licence."));
}

// ---- links ----------------------------------------------------------------------

function renderLinks() {
  const b = lv1();
  const links = [["Swagger UI: the whole API", "/swagger/index.html"]];
  if (can("LICENSE_USAGE")) {
    links.push(["Analytics: agents (CSV)", `${b}/analytics/agents?format=csv`], ["Analytics: leases (CSV)", `${b}/analytics/leases?format=csv`],
      ["Analytics: refusals (CSV)", `${b}/analytics/rejections?format=csv`]);
  }
  if (can("ACCOUNT_ADMIN")) links.push(["Audit trail (CSV)", `${b}/audit?format=csv`]);
  // CSV exports need the Authorization header: fetch them and hand the
  // browser a blob, instead of a link it would open without credentials.
  $("links").replaceChildren(...links.map(([text, href]) => el("li", {}, el("a", {
    href, onclick: href.includes("format=csv") ? (ev) => { ev.preventDefault(); download(href); } : undefined,
    target: href.startsWith("/swagger") ? "_blank" : undefined, rel: "noopener",
  }, text))));
}

async function download(href) {
  const res = await fetch(href, { headers: { Authorization: state.auth, Accept: "text/csv" }, credentials: "omit" });
  if (!res.ok) { $("load-error").hidden = false; $("load-error").textContent = `Export failed: HTTP ${res.status}`; return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: href.split("/").pop().split("?")[0] + ".csv" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- wiring ------------------------------------------------------------------------

$("signin-form").addEventListener("submit", signIn);
$("signout").addEventListener("click", signOut);
$("refresh").addEventListener("click", () => refresh());
for (const btn of document.querySelectorAll("[data-range]")) {
  btn.addEventListener("click", () => {
    state.range = btn.dataset.range;
    for (const b of document.querySelectorAll("[data-range]")) b.classList.toggle("active", b === btn);
    loadChart().catch((e) => { $("load-error").hidden = false; $("load-error").textContent = e.message; });
  });
}
$("chart-scope").addEventListener("change", () => loadChart().catch(() => {}));
$("chart-package").addEventListener("change", () => {
  $("chart-package").dataset.chosen = $("chart-package").value;
  loadChart().catch(() => {});
});

if (state.auth) {
  start().catch(() => { sessionStorage.removeItem(AUTH_KEY); state.auth = null; showSignIn(""); });
} else {
  showSignIn("");
}
