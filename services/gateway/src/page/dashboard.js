// 党建看板: the municipal dashboard page. Plain JavaScript, no build step, no external resources
// (the page is served with a self-only content security policy); the charts are drawn by the
// vendored Apache ECharts (vendor/echarts/VENDOR.md) with its SVG renderer and tooltips drawn
// inside the chart (no HTML tooltip: its inline style attributes may break the policy).
//
// It speaks only the public API: POST /api/v1/auth/login and /auth/refresh,
// GET /api/v1/me/profile (or /me), GET /api/v1/orgs/{id}, GET /api/v1/dashboard/orgs/{id}?month= (also for last December's
// grades), …/trend?year=, …/histogram?year=&bins=, …/branches?month=, …/ranking?year=&limit=,
// GET /api/v1/orgs/{id}/exports/ledger.xlsx?year=.
//
// The tokens live in this script's memory only: a reload asks for the password again. The access
// token is refreshed before it expires (scheduled from `expires_in`); a 401 is retried once after
// a refresh (a tab that slept past its timer).
//
// Wall mode (大屏): `#wall` or `?wall=1` in the address, or the header's toggle. Dark, laid out
// for 1920×1080, reloads its figures every `?refresh=` seconds (default 60) without reloading
// the page.
"use strict";

// Script errors and policy violations, kept for the browser tests (crates/e2e, browser.rs).
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push("unhandled " + String(e.reason)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__errors.push("csp " + e.violatedDirective + " " + e.blockedURI));
// How many times the access token was refreshed on schedule (read by the browser test).
window.__refreshes = 0;

const GRADES = [
  ["excellent", "优秀"],
  ["qualified", "合格"],
  ["basically_qualified", "基本合格"],
  ["unqualified", "不合格"],
];
const HISTOGRAM_BINS = 10;
const RANKING_LIMIT = 10;
/// The lowest branches shown in the branches chart (the list answers lowest first).
const BRANCHES_SHOWN = 12;
const FONT = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", sans-serif';

const params = new URLSearchParams(location.search);
const state = {
  access: null,
  refresh: null,
  refreshTimer: null,
  refreshing: null,
  /** The organizations the caller administers: [{org_id, name, role}]. */
  scopes: [],
  /** The organization shown, and the stack of organizations drilled through from the scope. */
  path: [],
  wall: location.hash === "#wall" || params.get("wall") === "1",
  wallTimer: null,
  loads: 0,
  /** The number of the latest load: an older answer arriving late is dropped. */
  seq: 0,
  /** The last answers, so a theme change redraws without asking again. */
  last: null,
  charts: new Map(),
};

const $ = (id) => document.getElementById(id);
function text(el, value) { el.textContent = value; }

// ---------------------------------------------------------------- tokens

function setTokens(answer) {
  state.access = answer.access_token;
  if (answer.refresh_token) state.refresh = answer.refresh_token;
  clearTimeout(state.refreshTimer);
  const life = Number(answer.expires_in) || 900;
  // A minute before expiry, or halfway for short lives (tests run with 30 s).
  const delay = life > 120 ? life - 60 : life / 2;
  state.refreshTimer = setTimeout(() => {
    refreshTokens().then((ok) => { if (ok) window.__refreshes += 1; });
  }, delay * 1000);
}

/// Trades the refresh token for a new pair (one trade at a time: a refresh token works once).
/// Answers whether it worked; when it did not, the page is logged out.
function refreshTokens() {
  if (!state.refresh) return Promise.resolve(false);
  if (!state.refreshing) {
    const token = state.refresh;
    state.refreshing = fetch("/api/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ refresh_token: token }),
    }).then(async (response) => {
      if (!response.ok) throw new Error(String(response.status));
      setTokens(await response.json());
      return true;
    }).catch(() => {
      logout("登录已过期，请重新登录");
      return false;
    }).finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

async function api(path, options = {}, retried = false) {
  const headers = Object.assign({ accept: "application/json" }, options.headers || {});
  if (state.access) headers.authorization = "Bearer " + state.access;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && state.access) {
    if (!retried && (await refreshTokens())) return api(path, options, true);
    logout("登录已过期，请重新登录");
    throw new Error("登录已过期，请重新登录");
  }
  if (!response.ok) {
    let detail = response.status + "";
    try {
      const problem = await response.json();
      detail = problem.title || problem.detail || detail;
      if (problem.errors && problem.errors.length) {
        detail += "：" + problem.errors.map((e) => e.field + " " + e.message).join("；");
      }
    } catch (_) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function getJson(path) { return (await api(path)).json(); }

function logout(message) {
  state.access = null;
  state.refresh = null;
  clearTimeout(state.refreshTimer);
  clearInterval(state.wallTimer);
  state.wallTimer = null;
  $("board").hidden = true;
  $("logout").hidden = true;
  $("wall-toggle").hidden = true;
  $("login-panel").hidden = false;
  text($("who"), "");
  text($("login-error"), typeof message === "string" ? message : "");
}

async function login(event) {
  event.preventDefault();
  const form = new FormData($("login-form"));
  text($("login-error"), "");
  try {
    const answer = await (await api("/api/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    })).json();
    setTokens(answer);
    $("login-form").reset();
    await start();
  } catch (e) {
    text($("login-error"), "登录失败：" + (e.status === 401 ? "用户名或密码错误" : e.message));
  }
}

// ---------------------------------------------------------------- months

function monthOf(year, monthIndex) {
  const d = new Date(Date.UTC(year, monthIndex, 1));
  return d.getUTCFullYear() + "-" + String(d.getUTCMonth() + 1).padStart(2, "0");
}

function monthLabel(month) {
  return Number(month.slice(0, 4)) + "年" + Number(month.slice(5, 7)) + "月";
}

/// The month picker: this month in Shanghai (the periods' time zone, no daylight saving) and the
/// 35 before it, in Chinese (2026年11月), newest first.
function fillMonths() {
  const select = $("month");
  const shanghai = new Date(Date.now() + 8 * 3600 * 1000);
  select.replaceChildren();
  for (let i = 0; i < 36; i++) {
    const m = monthOf(shanghai.getUTCFullYear(), shanghai.getUTCMonth() - i);
    select.append(new Option(monthLabel(m), m));
  }
  const wanted = params.get("month");
  if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
}

function stepMonth(delta) {
  const select = $("month");
  const i = select.selectedIndex - delta;
  if (i >= 0 && i < select.options.length) {
    select.selectedIndex = i;
    load();
  }
}

function percent(rate) { return (rate * 100).toFixed(1) + "%"; }
function points(value) { return Number.isInteger(value) ? String(value) : Number(value).toFixed(1); }

// ---------------------------------------------------------------- start

/// The caller with names (`GET /api/v1/me/profile`: their name, each role's organization name);
/// a gateway without it answers 404, and `/me` (ids only) is read instead.
async function profile() {
  try {
    return await getJson("/api/v1/me/profile");
  } catch (e) {
    if (e.status === 404) return getJson("/api/v1/me");
    throw e;
  }
}

async function start() {
  const me = await profile();
  const staff = (me.roles || []).filter((r) => r.role === "admin" || r.role === "secretary");
  if (!staff.length) {
    logout("看板仅供党组织管理员和书记使用");
    return;
  }
  state.scopes = [];
  for (const role of staff) {
    const name = role.org_name || (await getJson("/api/v1/orgs/" + role.org_id)).name;
    state.scopes.push({ org_id: role.org_id, name, role: role.role });
  }
  $("login-panel").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  $("wall-toggle").hidden = false;
  const first = state.scopes[0];
  text($("who"), (me.name || me.subject) + " · " + first.name + (first.role === "admin" ? "管理员" : "书记"));
  const picker = $("org-picker");
  picker.replaceChildren();
  for (const s of state.scopes) {
    picker.append(new Option(s.name + (s.role === "admin" ? "（管理员）" : "（书记）"), s.org_id));
  }
  $("org-picker-label").hidden = state.scopes.length < 2;
  if (!$("month").options.length) fillMonths();
  state.path = [{ org_id: first.org_id, name: first.name }];
  applyWall();
  await load();
}

// ---------------------------------------------------------------- loading

function current() { return state.path[state.path.length - 1]; }

/// Reads every figure of the organization and month shown, then draws them. A part that fails
/// is named in the error line; the others are still drawn.
async function load() {
  const org = current();
  if (!org || !state.access) return;
  const seq = ++state.seq;
  const month = $("month").value;
  const year = Number(month.slice(0, 4));
  const base = "/api/v1/dashboard/orgs/" + org.org_id;
  const parts = await Promise.allSettled([
    getJson(base + "?month=" + month),
    getJson(base + "/trend?year=" + year),
    getJson(base + "/histogram?year=" + year + "&bins=" + HISTOGRAM_BINS),
    getJson(base + "/branches?month=" + month),
    getJson(base + "/ranking?year=" + year + "&limit=" + RANKING_LIMIT),
    getJson(base + "?month=" + (year - 1) + "-12"),
  ]);
  if (!state.access || seq !== state.seq) return; // logged out, or a later load is under way
  const names = ["本月概况", "月度趋势", "积分分布", "支部申报率", "积分排行", "上年定级"];
  const failed = [];
  const [dashboard, trend, histogram, branches, ranking, lastYear] = parts.map((p, i) => {
    if (p.status === "fulfilled") return p.value;
    // Last year may have no standard (422) or no figures: its grades are then simply absent.
    if (i !== 5) failed.push(names[i] + "（" + p.reason.message + "）");
    return null;
  });
  text($("board-error"), failed.length ? "加载失败：" + failed.join("；") : "");
  state.last = { org, month, year, dashboard, trend, histogram, branches, ranking, lastYear };
  render();
  state.loads += 1;
  const board = $("board");
  board.dataset.org = org.org_id;
  board.dataset.month = month;
  board.dataset.loads = String(state.loads);
  const now = new Date();
  text($("updated"), "数据更新于 " + [now.getHours(), now.getMinutes(), now.getSeconds()]
    .map((n) => String(n).padStart(2, "0")).join(":"));
}

// ---------------------------------------------------------------- drawing

/// One observer resizes every chart with its box (the window, the wall toggle, the grid).
const resizer = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const instance = echarts.getInstanceByDom(entry.target);
    if (instance) instance.resize();
  }
});

function chart(id) {
  let instance = state.charts.get(id);
  if (!instance) {
    const el = $(id);
    instance = echarts.init(el, state.wall ? "dark" : null, { renderer: "svg", locale: "ZH" });
    state.charts.set(id, instance);
    resizer.observe(el);
  }
  return instance;
}

function disposeCharts() {
  for (const [id, instance] of state.charts) {
    resizer.unobserve($(id));
    instance.dispose();
  }
  state.charts.clear();
}

/// What every chart shares: the page's font, a transparent background (the panel shows
/// through), tooltips drawn inside the chart.
function fontSize() {
  if (!state.wall) return 12;
  return window.innerWidth >= 1600 ? 15 : 13;
}

function base(extra) {
  const size = fontSize();
  return Object.assign({
    backgroundColor: "transparent",
    textStyle: { fontFamily: FONT, fontSize: size },
    animationDuration: 400,
    grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", renderMode: "richText", confine: true, textStyle: { fontSize: size } },
  }, extra);
}

const RED = "#d32f2f";
const BLUE = "#1e88e5";
const GOLD = "#f9a825";

/// A count axis's top: room above the highest bar for its value label.
function headroom({ max }) { return Math.max(1, Math.ceil(max * 1.15)); }

function narrow(id) { return $(id).clientWidth < 420; }

function render() {
  const last = state.last;
  if (!last) return;
  const { org, month, year, dashboard: d } = last;
  crumbs(d);
  text($("org-name"), ((d && d.name) || org.name) + " · " + monthLabel(month));
  if (d) {
    text($("members"), d.members);
    text($("declared"), d.declared);
    text($("participation"), percent(d.participation_rate));
    text($("points-avg"), points(d.approved_points_avg));
  }
  drawCharts();
  drawRanking(last);
  text($("title-participation"), year + "年月度申报率");
  text($("title-points"), year + "年月度人均积分");
  text($("title-histogram"), year + "年党员积分分布（人数）");
  text($("ranking-title"), year + "年度积分排行（前 " + RANKING_LIMIT + " 名）");
}

/// Draws the charts from the last answers (also after a resize: what fits depends on the width).
function drawCharts() {
  const last = state.last;
  if (!last) return;
  drawTrend(last);
  drawGrades(last);
  drawChildren(last);
  drawHistogram(last);
  drawBranches(last);
}

function drawTrend({ trend }) {
  const months = (trend && trend.months) || [];
  const labels = months.map((m) => Number(m.month.slice(5, 7)) + "月");
  chart("chart-participation").setOption(base({
    grid: { left: 8, right: 28, top: 28, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: labels, boundaryGap: false },
    yAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
    tooltip: Object.assign(base().tooltip, { valueFormatter: percent }),
    series: [{
      name: "申报率", type: "line", data: months.map((m) => m.participation_rate),
      symbolSize: 7, areaStyle: { opacity: 0.12 }, itemStyle: { color: RED },
      label: { show: !narrow("chart-participation"), position: "top", formatter: (p) => (p.value ? percent(p.value) : "") },
      labelLayout: { hideOverlap: true },
    }],
  }), true);
  chart("chart-points").setOption(base({
    xAxis: { type: "category", data: labels },
    yAxis: { type: "value", name: "分", nameGap: 8 },
    tooltip: Object.assign(base().tooltip, { valueFormatter: points }),
    series: [{
      name: "人均积分", type: "bar", data: months.map((m) => m.approved_points_avg),
      barMaxWidth: 28, itemStyle: { color: GOLD },
      label: { show: !narrow("chart-points"), position: "top", formatter: (p) => (p.value ? points(p.value) : "") },
      labelLayout: { hideOverlap: true },
    }],
  }), true);
}

function drawGrades({ year, dashboard, lastYear }) {
  const series = [];
  for (const [answer, y, color] of [[dashboard, year, RED], [lastYear, year - 1, "#90a4ae"]]) {
    const g = answer && answer.grade_distribution;
    if (g) {
      series.push({
        name: y + "年", type: "bar", data: GRADES.map(([key]) => g[key]), barMaxWidth: 36,
        itemStyle: { color }, label: { show: true, position: "top" },
      });
    }
  }
  const published = !!(dashboard && dashboard.grade_distribution);
  const lastPublished = !!(lastYear && lastYear.grade_distribution);
  $("grades-empty").hidden = published;
  text($("title-grades"), year + "年定级分布" + (lastPublished ? "（与上年对比）" : "（上年未公示）"));
  $("chart-grades").hidden = !series.length;
  if (!series.length) {
    const old = state.charts.get("chart-grades");
    if (old) {
      resizer.unobserve($("chart-grades"));
      old.dispose();
      state.charts.delete("chart-grades");
    }
    return;
  }
  chart("chart-grades").setOption(base({
    legend: { top: 0, left: "center" },
    grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: GRADES.map(([, name]) => name) },
    yAxis: { type: "value", name: "人", minInterval: 1, max: headroom },
    series,
  }), true);
}

function drawChildren({ dashboard }) {
  // Highest first, from the top: a category axis starts at the bottom, so ascending.
  const children = ((dashboard && dashboard.children) || [])
    .slice()
    .sort((a, b) => a.participation_rate - b.participation_rate || b.name.localeCompare(a.name, "zh"));
  $("children-empty").hidden = children.length > 0;
  $("chart-children").hidden = children.length === 0;
  if (!children.length) return;
  const el = $("chart-children");
  if (!(document.body.classList.contains("wall") && getComputedStyle(el).flexGrow === "1")) {
    el.style.height = Math.max(160, 36 + children.length * 30) + "px";
  }
  const instance = chart("chart-children");
  instance.resize();
  instance.setOption(base({
    tooltip: Object.assign(base().tooltip, { valueFormatter: percent }),
    grid: { left: 8, right: 56, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
    yAxis: {
      type: "category", data: children.map((c) => c.name), triggerEvent: true,
      axisLabel: { width: Math.max(80, el.clientWidth * 0.35), overflow: "truncate", color: state.wall ? "#90caf9" : "#1565c0" },
    },
    series: [{
      name: "申报率", type: "bar", data: children.map((c) => c.participation_rate), barMaxWidth: 22,
      cursor: "pointer", itemStyle: { color: BLUE },
      label: { show: true, position: "right", formatter: (p) => percent(p.value) },
    }],
  }), true);
  instance.off("click");
  instance.on("click", (p) => {
    const i = p.componentType === "yAxis" ? children.findIndex((c) => c.name === p.value) : p.dataIndex;
    if (i >= 0) descend(children[i]);
  });
}

function drawHistogram({ histogram }) {
  const bins = (histogram && histogram.bins) || [];
  chart("chart-histogram").setOption(base({
    xAxis: {
      type: "category", data: bins.map((b) => points(b.from) + "–" + points(b.to)),
      name: "分", axisLabel: { interval: 0, rotate: narrow("chart-histogram") ? 45 : 0, hideOverlap: true },
    },
    yAxis: { type: "value", name: "人", minInterval: 1, max: headroom },
    series: [{
      name: "人数", type: "bar", data: bins.map((b) => b.count), barCategoryGap: "8%",
      itemStyle: { color: "#43a047" }, label: { show: true, position: "top", formatter: (p) => (p.value ? p.value : "") },
    }],
  }), true);
}

function drawBranches({ branches }) {
  const all = (branches && branches.items) || [];
  const el = $("chart-branches");
  // On the wall the chart has the height the grid gives it: as many bars as fit, 22 px each.
  const fixed = document.body.classList.contains("wall") && getComputedStyle(el).flexGrow === "1";
  const shown = fixed ? Math.max(3, Math.min(BRANCHES_SHOWN, Math.floor((el.clientHeight - 50) / 22))) : BRANCHES_SHOWN;
  const items = all.slice(0, shown).reverse(); // lowest at the top
  const lagging = all.filter((b) => b.lagging);
  const threshold = branches && typeof branches.threshold === "number" ? branches.threshold : null;
  if (!fixed) el.style.height = Math.max(160, 60 + items.length * 28) + "px";
  const instance = chart("chart-branches");
  instance.resize();
  instance.setOption(base({
    tooltip: Object.assign(base().tooltip, { valueFormatter: percent }),
    grid: { left: 8, right: 56, top: threshold === null ? 8 : 26, bottom: 8, containLabel: true },
    xAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
    yAxis: {
      type: "category", data: items.map((b) => b.name),
      axisLabel: { width: Math.max(80, el.clientWidth * 0.35), overflow: "truncate" },
    },
    series: [{
      name: "申报率", type: "bar", data: items.map((b) => b.participation_rate), barMaxWidth: 20,
      itemStyle: { color: (p) => (items[p.dataIndex].lagging ? RED : "#78909c") },
      label: { show: true, position: "right", formatter: (p) => percent(p.value) },
      markLine: threshold === null ? undefined : {
        symbol: "none", silent: true, data: [{ xAxis: threshold }],
        lineStyle: { color: RED, type: "dashed" }, label: { formatter: "后进线 " + percent(threshold), position: "end", color: RED },
      },
    }],
  }), true);
  const line = $("lagging");
  line.classList.toggle("none", !lagging.length);
  const named = lagging.slice(0, 6).map((b) => b.name).join("、");
  text(line, lagging.length
    ? "后进支部 " + lagging.length + " 个：" + named + (lagging.length > 6 ? " 等" : "")
    : all.length ? "没有后进支部" : "");
}

function drawRanking({ ranking }) {
  const rows = $("ranking");
  rows.replaceChildren();
  ((ranking && ranking.items) || []).forEach((m, i) => {
    const tr = document.createElement("tr");
    for (const value of [i + 1, m.name, m.branch_name || "", points(m.total)]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    rows.append(tr);
  });
}

// ---------------------------------------------------------------- navigation

/// The path from the caller's organization down to the one shown: the dashboard's ancestors
/// (root first) from the caller's own organization on; the ones above it are not the caller's.
function crumbs(d) {
  const org = current();
  const scope = state.path[0];
  const from = d && Array.isArray(d.ancestors) ? d.ancestors.findIndex((a) => a.org_id === scope.org_id) : -1;
  if (from >= 0) {
    state.path = d.ancestors.slice(from).map((a) => ({ org_id: a.org_id, name: a.name })).concat([org]);
  }
  if (d && d.name) org.name = d.name;
  const path = state.path;
  const nav = $("crumbs");
  nav.replaceChildren();
  path.forEach((p, i) => {
    if (i) nav.append(document.createTextNode(" › "));
    if (i === path.length - 1) {
      const span = document.createElement("span");
      span.className = "here";
      span.textContent = p.name;
      nav.append(span);
      return;
    }
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = p.name;
    b.addEventListener("click", () => { state.path = state.path.slice(0, i + 1); load(); });
    nav.append(b);
  });
}

function descend(child) {
  state.path.push({ org_id: child.org_id, name: child.name });
  load();
}

// ---------------------------------------------------------------- wall mode

function wallSeconds() {
  const n = Number(params.get("refresh"));
  return Number.isFinite(n) && n >= 5 ? n : 60;
}

/// Applies the mode: the body's class, the address, the charts' theme and the auto-refresh.
function applyWall() {
  document.body.classList.toggle("wall", state.wall);
  $("wall-toggle").setAttribute("aria-pressed", String(state.wall));
  text($("wall-toggle"), state.wall ? "退出大屏" : "大屏");
  const url = new URL(location.href);
  url.hash = state.wall ? "wall" : "";
  if (!state.wall) url.searchParams.delete("wall");
  history.replaceState(null, "", url.pathname + url.search + (state.wall ? "#wall" : ""));
  clearInterval(state.wallTimer);
  state.wallTimer = state.wall && state.access ? setInterval(load, wallSeconds() * 1000) : null;
  disposeCharts();
  render();
}

function toggleWall() {
  state.wall = !state.wall;
  applyWall();
}

// ---------------------------------------------------------------- export

// The export needs the bearer token, so it is fetched and handed to the browser as a file.
async function download(event) {
  event.preventDefault();
  const org = current();
  const year = $("month").value.slice(0, 4);
  try {
    const blob = await (await api("/api/v1/orgs/" + org.org_id + "/exports/ledger.xlsx?year=" + year)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "积分台账-" + org.name + "-" + year + ".xlsx";
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    text($("board-error"), "下载失败：" + e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof echarts === "undefined") {
    text($("login-error"), "图表组件加载失败，请刷新页面");
    return;
  }
  fillMonths();
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  $("wall-toggle").addEventListener("click", toggleWall);
  $("period").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  $("month").addEventListener("change", () => load());
  $("month-prev").addEventListener("click", () => stepMonth(-1));
  $("month-next").addEventListener("click", () => stepMonth(1));
  $("org-picker").addEventListener("change", () => {
    const s = state.scopes.find((x) => x.org_id === $("org-picker").value);
    state.path = [{ org_id: s.org_id, name: s.name }];
    load();
  });
  $("export").addEventListener("click", download);
  window.addEventListener("hashchange", () => {
    const wanted = location.hash === "#wall";
    if (wanted !== state.wall) { state.wall = wanted; applyWall(); }
  });
  // Every chart follows its box (the observer above); a redraw after the window settles also
  // re-decides what fits the new width (value labels, label widths, the wall's bar count).
  let settle = null;
  window.addEventListener("resize", () => {
    for (const c of state.charts.values()) c.resize();
    clearTimeout(settle);
    settle = setTimeout(drawCharts, 200);
  });
  document.body.classList.toggle("wall", state.wall);
});
