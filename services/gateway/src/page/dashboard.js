// 党建看板: the municipal dashboard page. Plain JavaScript, no build step, no external resources
// (the page is served with a self-only content security policy). It speaks only the public API:
// POST /api/v1/auth/login, GET /api/v1/me, GET /api/v1/orgs/{id}, GET /api/v1/orgs/{id}/children,
// GET /api/v1/dashboard/orgs/{id}?month=, GET /api/v1/dashboard/orgs/{id}/ranking?year=&limit=,
// GET /api/v1/orgs/{id}/exports/ledger.xlsx?year=.
"use strict";

// Script errors and policy violations, kept for the browser tests (crates/e2e, browser.rs).
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__errors.push("csp " + e.violatedDirective + " " + e.blockedURI));

const state = { token: sessionStorage.getItem("jifen-token"), path: [] };

const $ = (id) => document.getElementById(id);

function text(el, value) { el.textContent = value; }

async function api(path, options = {}) {
  const headers = Object.assign({ accept: "application/json" }, options.headers || {});
  if (state.token) headers.authorization = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && state.token) {
    logout();
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
    throw new Error(detail);
  }
  return response;
}

async function getJson(path) { return (await api(path)).json(); }

function logout() {
  state.token = null;
  sessionStorage.removeItem("jifen-token");
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login-panel").hidden = false;
  text($("who"), "");
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
    state.token = answer.access_token;
    sessionStorage.setItem("jifen-token", state.token);
    await start();
  } catch (e) {
    text($("login-error"), "登录失败：" + e.message);
  }
}

function thisMonth() {
  const now = new Date();
  return now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0");
}

function percent(rate) { return (rate * 100).toFixed(1) + "%"; }

async function start() {
  const me = await getJson("/api/v1/me");
  const staff = (me.roles || []).filter((r) => r.role === "admin" || r.role === "secretary");
  if (!staff.length) {
    text($("login-error"), "看板仅供党组织管理员和书记使用");
    logout();
    return;
  }
  $("login-panel").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  text($("who"), me.subject);
  if (!$("month").value) $("month").value = thisMonth();
  const picker = $("org-picker");
  picker.replaceChildren();
  for (const role of staff) {
    const org = await getJson("/api/v1/orgs/" + role.org_id);
    const option = document.createElement("option");
    option.value = org.id;
    option.textContent = org.name + (role.role === "admin" ? "（管理员）" : "（书记）");
    picker.append(option);
  }
  const first = await getJson("/api/v1/orgs/" + picker.value);
  state.path = [first];
  await show();
}

function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  state.path.forEach((org, i) => {
    if (i) nav.append(" › ");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = org.name;
    b.addEventListener("click", () => { state.path = state.path.slice(0, i + 1); show(); });
    nav.append(b);
  });
}

async function descend(id) {
  state.path.push(await getJson("/api/v1/orgs/" + id));
  await show();
}

async function show() {
  const org = state.path[state.path.length - 1];
  const month = $("month").value || thisMonth();
  const year = month.slice(0, 4);
  text($("board-error"), "");
  crumbs();
  text($("org-name"), org.name + " · " + month);
  text($("ranking-title"), year + " 年度积分排行（前 10 名）");
  try {
    const d = await getJson("/api/v1/dashboard/orgs/" + org.id + "?month=" + encodeURIComponent(month));
    text($("members"), d.members);
    text($("declared"), d.declared);
    text($("participation"), percent(d.participation_rate));
    text($("points-avg"), d.approved_points_avg);
    $("grades").hidden = !d.grade_distribution;
    if (d.grade_distribution) {
      text($("g-excellent"), d.grade_distribution.excellent);
      text($("g-qualified"), d.grade_distribution.qualified);
      text($("g-basically"), d.grade_distribution.basically_qualified);
      text($("g-unqualified"), d.grade_distribution.unqualified);
    }
    const children = await getJson("/api/v1/orgs/" + org.id + "/children");
    const names = new Map((children.items || []).map((c) => [c.id, c]));
    const body = $("children");
    body.replaceChildren();
    for (const c of d.children) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = c.name;
      if (names.has(c.org_id)) b.addEventListener("click", () => descend(c.org_id));
      name.append(b);
      const rate = document.createElement("td");
      rate.textContent = percent(c.participation_rate);
      const avg = document.createElement("td");
      avg.textContent = c.approved_points_avg;
      tr.append(name, rate, avg);
      body.append(tr);
    }
    const ranking = await getJson("/api/v1/dashboard/orgs/" + org.id + "/ranking?year=" + year + "&limit=10");
    const rows = $("ranking");
    rows.replaceChildren();
    ranking.items.forEach((m, i) => {
      const tr = document.createElement("tr");
      for (const value of [i + 1, m.name, m.total]) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      rows.append(tr);
    });
  } catch (e) {
    text($("board-error"), "加载失败：" + e.message);
  }
}

// The export needs the bearer token, so it is fetched and handed to the browser as a file.
async function download(event) {
  event.preventDefault();
  const org = state.path[state.path.length - 1];
  const year = ($("month").value || thisMonth()).slice(0, 4);
  try {
    const blob = await (await api("/api/v1/orgs/" + org.id + "/exports/ledger.xlsx?year=" + year)).blob();
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
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("period").addEventListener("submit", (e) => { e.preventDefault(); show(); });
  $("org-picker").addEventListener("change", async () => {
    state.path = [await getJson("/api/v1/orgs/" + $("org-picker").value)];
    show();
  });
  $("export").addEventListener("click", download);
  if (state.token) start().catch(() => logout());
});
