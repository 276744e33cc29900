// 党员积分 H5: the page for members and branch secretaries at GET /m/ (docs/decisions/0013).
// Plain JavaScript, no build step, no library, nothing from another origin (the page is served
// with a self-only content security policy: no inline script or style, images only from the
// page itself or data: URLs). Written for WeChat's in-app browser: nothing newer than
// Chromium 100 and iOS Safari 15 have (no Array.prototype.at, no structuredClone, no <dialog>).
//
// It speaks only the public API (API.md):
//   member:    POST /api/v1/auth/login, POST /api/v1/auth/refresh, GET /api/v1/me,
//              GET /api/v1/members/{id}, GET /api/v1/orgs/{id}, GET /api/v1/standards/{year}?org_id=,
//              GET|PUT /api/v1/members/{id}/declarations/{month}, POST /api/v1/declarations/{id}:submit,
//              GET /api/v1/declarations/{id}/history, POST /api/v1/evidence, GET /api/v1/evidence/{ref},
//              GET /api/v1/members/{id}/ledger?year=, GET /api/v1/orgs/{branch}/gradings/{year},
//              POST /api/v1/members/{id}/gradings/{year}/appeals
//   secretary: GET /api/v1/orgs/{id}/declarations?month=&status=, GET /api/v1/orgs/{id}/members,
//              POST /api/v1/declarations/{id}:review, POST /api/v1/orgs/{id}/declarations:batch-approve,
//              GET|POST /api/v1/orgs/{id}/branch-records, GET /api/v1/dashboard/orgs/{id}?month=
//
// Views live in the URL's fragment: #/declare/<month>, #/ledger/<year>, #/grade/<year>,
// #/review/<month>, #/check/<declaration id>, #/records/<month>.
"use strict";

// Script errors and policy violations, kept for the browser tests (crates/e2e, browser.rs).
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) =>
  window.__errors.push("unhandled: " + String((e.reason && e.reason.message) || e.reason)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__errors.push("csp " + e.violatedDirective + " " + e.blockedURI));

const state = {
  token: sessionStorage.getItem("jifen-token"),
  refreshToken: sessionStorage.getItem("jifen-refresh"),
  refreshing: null,
  me: null,
  member: null,      // the caller's member record, when the account is a member's
  branchId: null,    // the branch the member belongs to (grading is per branch)
  secretaryOrgs: [], // organizations the caller is secretary of
  reviewOrg: null,   // the one the review views show
  standards: {},     // "year|org" → standard
  names: {},         // org id → Map(member id → member)
  queue: {},         // declaration id → declaration, as the review list last answered it
  evidence: {},      // reference → data: URL (or "pdf")
  flash: null,       // a message for the next view
  seq: 0,            // bumped per view, so a slow answer does not draw over a newer view
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Words

const STATUS = { draft: "草稿", submitted: "已提交", approved: "已通过", returned: "已退回", rejected: "未通过" };
const GRADE = { excellent: "优秀", qualified: "合格", basically_qualified: "基本合格", unqualified: "不合格" };
const KIND = { base: "基础分", bonus: "奖励分", deduction: "扣分", veto: "一票否决" };
const SANCTION = { warning: "警告", serious_warning: "严重警告", removal_from_post: "撤销党内职务", probation: "留党察看", expulsion: "开除党籍" };
const GRADING_STATUS = { proposed: "待确认", confirmed: "公示中", final: "已定档" };

const CODES = {
  network: "网络连接失败，请检查网络后重试",
  invalid_credentials: "用户名或密码错误",
  unauthenticated: "请先登录",
  session_expired: "登录已过期，请重新登录",
  permission_denied: "没有权限进行此操作",
  not_found: "没有找到，可能不存在或无权查看",
  invalid_argument: "填写的内容有误",
  period_closed: "该月申报已截止或尚未开始；如需补报，请联系支部书记",
  not_editable: "申报已提交或已审核，不能再修改",
  not_draft: "只有草稿才能提交",
  not_submitted: "该申报不在待审核状态，可能已被他人审核",
  monthly_cap_exceeded: "超过了该项目的每月上限",
  grading_final: "该年度定级已定档，积分不能再变动",
  no_standard: "该年度尚未发布积分标准",
  member_not_active: "党员状态异常，不能申报",
  concurrent_change: "数据刚刚被修改，请刷新后重试",
  already_revoked: "该记录已撤销",
  payload_too_large: "文件太大，请选择不超过 10 MB 的图片",
  rate_limited: "操作太频繁，请稍后再试",
  unavailable: "服务暂时不可用，请稍后再试",
  conflict: "状态已经变化，请刷新后重试",
  rule_violation: "不符合积分规则",
  failed_precondition: "当前状态不允许此操作",
  not_graded: "本年度定级中没有您",
  grading_not_confirmed: "定级尚未公示，暂不能申诉",
  appeal_open: "您已提交申诉，正在处理中",
  internal: "系统出错，请稍后再试",
};

// What a named field of a problem means, in words a person reads.
const FIELDS = {
  evidence: "需要上传证明材料",
  quantity: "数量超出允许范围",
  item_code: "该项目不能由本人申报",
  note: "备注过长",
  approved_points: "核定分须在 0 到申报分之间，最多一位小数",
  reason: "请填写理由",
  comment: "请填写意见",
  file: "文件须为 JPG、PNG、GIF、WebP 图片或 PDF，且不超过 10 MB",
  member_id: "党员不在本支部",
  month: "月份不正确",
  username: "请填写用户名",
  password: "请填写密码",
};

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title || String(status));
    this.status = status;
    this.problem = problem;
  }
}

function fieldText(field, message) {
  const line = /^(lines|entries)\[(\d+)\]\.?(.*)$/.exec(field || "");
  const name = line ? line[3].replace(/\[\d+\]$/, "") : field;
  const where = line ? "第 " + (Number(line[2]) + 1) + " 项：" : "";
  return where + (FIELDS[name] || message || field);
}

// The service's detail of monthly_cap_exceeded ("item P01 is capped at 4 points a month; this
// member would count 8 in 2026-12") in words, with the item's name from a standard read before.
function capText(detail) {
  const m = /item (\S+) is capped at ([\d.]+) points? a month(?:.*?would count ([\d.-]+))?/.exec(detail);
  if (!m) return "";
  let name = m[1];
  for (const key of Object.keys(state.standards)) {
    const item = state.standards[key].byCode.get(m[1]);
    if (item) { name = item.name; break; }
  }
  return "：「" + name + "」每月最多 " + m[2] + " 分" + (m[3] ? "，这样将达到 " + m[3] + " 分" : "");
}

// A problem (or any error) as a sentence in Chinese.
function problemText(error) {
  if (!(error instanceof ApiError)) return String((error && error.message) || error);
  const p = error.problem || {};
  let text = CODES[p.code];
  if (!text) {
    const chinese = /[\u4e00-\u9fff]/;
    text = chinese.test(p.detail || "") ? p.detail : chinese.test(p.title || "") ? p.title : "操作失败（" + error.status + "）";
  }
  if (p.code === "monthly_cap_exceeded") return text + capText(p.detail || "");
  if (p.errors && p.errors.length) text += "：" + p.errors.map((e) => fieldText(e.field, e.message)).join("；");
  return text;
}

// ---------------------------------------------------------------------------------------------
// Helpers

// h("div", {class: "x", onclick: f}, child, "text", …): an element.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Points with at most one decimal, as the API writes them.
function pts(value) {
  const tenths = Math.round(Number(value || 0) * 10);
  return String(tenths / 10);
}

function signed(value) {
  const text = pts(value);
  return Number(value) > 0 ? "+" + text : text;
}

// Now in Shanghai (+08:00, no daylight saving), as {y, m}.
function shanghaiNow() {
  const d = new Date(Date.now() + 8 * 3600 * 1000);
  return { y: d.getUTCFullYear(), m: d.getUTCMonth() + 1 };
}

function monthKey(y, m) { return y + "-" + String(m).padStart(2, "0"); }

function thisMonth() { const n = shanghaiNow(); return monthKey(n.y, n.m); }

function addMonths(key, n) {
  const total = Number(key.slice(0, 4)) * 12 + Number(key.slice(5)) - 1 + n;
  return monthKey(Math.floor(total / 12), (total % 12) + 1);
}

function monthLabel(key) { return key.slice(0, 4) + "年" + Number(key.slice(5)) + "月"; }

function timeLabel(iso, exclusive) {
  if (!iso) return "";
  // An exclusive end (open_until) is shown as the last minute before it.
  const d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000 - (exclusive ? 60000 : 0));
  return (d.getUTCMonth() + 1) + "月" + d.getUTCDate() + "日 " +
    String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
}

function showError(error) {
  const el = $("error");
  el.textContent = error ? problemText(error) : "";
  el.hidden = !error;
  if (error) el.scrollIntoView({ block: "nearest" });
}

// A message for the next view (after a save, a submission, a review).
function flash(text) { state.flash = text; }

function notice(text) {
  const el = $("notice");
  el.textContent = text || "";
  el.hidden = !text;
}

function select(options, value, onchange, label) {
  const s = h("select", { onchange: () => onchange(s.value), "aria-label": label });
  for (const [v, text] of options) s.append(h("option", { value: v, text }));
  s.value = value;
  return s;
}

// A button that shows it is busy while `action` runs and reports its failure.
function button(label, cls, action) {
  const b = h("button", { type: "button", class: cls, text: label });
  b.addEventListener("click", async () => {
    if (b.disabled) return;
    b.disabled = true;
    showError(null);
    notice(null);
    try { await action(b); } catch (e) { showError(e); } finally { b.disabled = false; }
  });
  return b;
}

// ---------------------------------------------------------------------------------------------
// The API

async function refreshTokens() {
  if (!state.refreshToken) return false;
  if (!state.refreshing) {
    state.refreshing = (async () => {
      try {
        const answer = await fetch("/api/v1/auth/refresh", {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ refresh_token: state.refreshToken }),
        });
        if (!answer.ok) return false;
        keepTokens(await answer.json());
        return true;
      } catch (_) {
        return false;
      } finally {
        setTimeout(() => { state.refreshing = null; }, 0);
      }
    })();
  }
  return state.refreshing;
}

async function api(path, options, retried) {
  options = options || {};
  const headers = Object.assign({ accept: "application/json" }, options.headers || {});
  if (state.token) headers.authorization = "Bearer " + state.token;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (_) {
    throw new ApiError(0, { code: "network" });
  }
  if (response.status === 401 && state.token) {
    if (!retried && (await refreshTokens())) return api(path, options, true);
    logout(CODES.session_expired);
    throw new ApiError(401, { code: "session_expired" });
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, problem || {});
  }
  return response;
}

async function getJson(path) { return (await api(path)).json(); }

async function send(method, path, body) {
  const response = await api(path, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  return response.status === 204 ? null : response.json();
}

// Every page of a list (`{"items","next_page_token"}`), or a plain array.
async function getAll(path) {
  const items = [];
  let token = "";
  for (let page = 0; page < 20; page++) {
    const sep = path.indexOf("?") >= 0 ? "&" : "?";
    const answer = await getJson(path + (token ? sep + "page_token=" + encodeURIComponent(token) : ""));
    if (Array.isArray(answer)) return answer;
    items.push(...(answer.items || []));
    token = answer.next_page_token;
    if (!token) break;
  }
  return items;
}

async function standard(year, orgId) {
  const key = year + "|" + orgId;
  if (!state.standards[key]) {
    const s = await getJson("/api/v1/standards/" + year + "?org_id=" + encodeURIComponent(orgId));
    s.byCode = new Map(s.items.map((i) => [i.code, i]));
    s.categoryNames = new Map((s.categories || []).map((c) => [c.code, c]));
    state.standards[key] = s;
  }
  return state.standards[key];
}

// The standard's items grouped by category, in the standard's order of categories.
function groupByCategory(std, items) {
  const groups = new Map();
  for (const c of std.categories || []) groups.set(c.code, []);
  for (const item of items) {
    if (!groups.has(item.category)) groups.set(item.category, []);
    groups.get(item.category).push(item);
  }
  return [...groups.entries()].filter(([, list]) => list.length);
}

function categoryTitle(std, code) {
  const c = std.categoryNames.get(code);
  if (!c) return code;
  return c.name + (c.cap !== undefined ? "（上限 " + pts(c.cap) + " 分）" : "（" + (KIND[c.kind] || "") + "）");
}

function itemName(std, code) {
  const item = std && std.byCode.get(code);
  return item ? item.name : code;
}

async function memberNames(orgId) {
  if (!state.names[orgId]) {
    const list = await getAll("/api/v1/orgs/" + orgId + "/members?recursive=true");
    state.names[orgId] = new Map(list.map((m) => [m.id, m]));
  }
  return state.names[orgId];
}

// An evidence file as a thumbnail: fetched with the bearer token and shown as a data: URL.
function evidenceThumb(ref, onRemove) {
  const box = h("span", { class: "thumb" });
  const img = h("img", { alt: "证明材料", class: "loading" });
  box.append(img);
  const show = (url) => {
    if (url === "pdf") { box.replaceChildren(h("span", { class: "pdf", text: "PDF" })); return; }
    img.src = url;
    img.classList.remove("loading");
    img.addEventListener("click", () => enlarge(url));
  };
  if (state.evidence[ref]) show(state.evidence[ref]);
  else {
    api("/api/v1/evidence/" + ref)
      .then((r) => r.blob())
      .then((blob) => (blob.type === "application/pdf" ? "pdf" : dataUrl(blob)))
      .then((url) => { state.evidence[ref] = url; show(url); })
      .catch(() => box.replaceChildren(h("span", { class: "pdf", text: "无法显示" })));
  }
  if (onRemove) box.append(h("button", { type: "button", class: "remove", "aria-label": "删除这张证明材料", text: "×", onclick: onRemove }));
  return box;
}

function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function enlarge(url) {
  const overlay = h("div", { class: "overlay", role: "dialog", "aria-label": "查看证明材料" },
    h("img", { src: url, alt: "证明材料" }),
    h("p", { text: "轻触任意处关闭" }));
  overlay.addEventListener("click", () => overlay.remove());
  document.body.append(overlay);
}

// ---------------------------------------------------------------------------------------------
// Log in and out

function keepTokens(answer) {
  state.token = answer.access_token;
  sessionStorage.setItem("jifen-token", state.token);
  if (answer.refresh_token) {
    state.refreshToken = answer.refresh_token;
    sessionStorage.setItem("jifen-refresh", state.refreshToken);
  }
}

function logout(message) {
  state.token = null;
  state.refreshToken = null;
  state.me = null;
  state.member = null;
  state.names = {};
  state.queue = {};
  state.evidence = {};
  sessionStorage.removeItem("jifen-token");
  sessionStorage.removeItem("jifen-refresh");
  $("view").hidden = true;
  $("view").replaceChildren();
  $("tabs").hidden = true;
  $("logout").hidden = true;
  $("login-panel").hidden = false;
  $("who").textContent = "";
  showError(null);
  notice(null);
  $("login-error").textContent = typeof message === "string" ? message : "";
}

async function login(event) {
  event.preventDefault();
  const form = new FormData($("login-form"));
  $("login-error").textContent = "";
  const submit = $("login-form").querySelector("button");
  submit.disabled = true;
  try {
    const answer = await (await api("/api/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    })).json();
    keepTokens(answer);
    $("login-form").reset();
    await start();
  } catch (e) {
    $("login-error").textContent = "登录失败：" + problemText(e);
  } finally {
    submit.disabled = false;
  }
}

async function start() {
  const me = await getJson("/api/v1/me");
  state.me = me;
  const secretaryRoles = (me.roles || []).filter((r) => r.role === "secretary");
  state.secretaryOrgs = [];
  for (const role of secretaryRoles) state.secretaryOrgs.push(await getJson("/api/v1/orgs/" + role.org_id));
  state.reviewOrg = state.secretaryOrgs[0] || null;
  state.member = null;
  if (me.member_id) {
    state.member = await getJson("/api/v1/members/" + me.member_id);
    const org = await getJson("/api/v1/orgs/" + state.member.org_id);
    state.branchId = org.kind === "group" && org.parent_id ? org.parent_id : org.id;
  }
  if (!state.member && !state.reviewOrg) {
    logout("本页面供党员和支部书记使用，请用党员账号登录");
    return;
  }
  $("login-panel").hidden = true;
  $("view").hidden = false;
  $("tabs").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = state.member ? state.member.name : me.subject;
  for (const tab of $("tabs").querySelectorAll("a")) {
    const role = tab.getAttribute("data-role");
    tab.hidden = role === "member" ? !state.member : !state.reviewOrg;
  }
  const wanted = location.hash.replace(/^#\/?/, "");
  if (!wanted) location.replace(state.member ? "#/declare" : "#/review");
  route();
}

// ---------------------------------------------------------------------------------------------
// Views

function route() {
  if (!state.me) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const view = parts[0] || (state.member ? "declare" : "review");
  const arg = decodeURIComponent(parts[1] || "");
  const seq = ++state.seq;
  const tab = view === "check" || view === "records" ? "review" : view;
  for (const a of $("tabs").querySelectorAll("a")) a.classList.toggle("active", a.getAttribute("data-view") === tab);
  showError(null);
  notice(state.flash);
  state.flash = null;
  const views = { declare: viewDeclare, ledger: viewLedger, grade: viewGrade, review: viewReview, check: viewCheck, records: viewRecords };
  const render = views[view];
  const memberOnly = view === "declare" || view === "ledger" || view === "grade";
  if (!render || (memberOnly && !state.member) || (!memberOnly && !state.reviewOrg)) {
    location.replace(state.member ? "#/declare" : "#/review");
    return;
  }
  const root = $("view");
  root.replaceChildren(h("p", { class: "muted", text: "加载中…" }));
  window.scrollTo(0, 0);
  render(arg, seq).then((content) => {
    if (seq !== state.seq || !content) return;
    root.replaceChildren(content);
  }).catch((e) => {
    if (seq !== state.seq) return;
    root.replaceChildren(h("p", { class: "muted", text: "加载失败" }));
    showError(e);
  });
}

function statusBadge(status) {
  return h("span", { class: "badge " + status, text: STATUS[status] || status });
}

// --- 申报: this month's declaration --------------------------------------------------------

function declarePath(month) {
  return "/api/v1/members/" + state.member.id + "/declarations/" + month;
}

async function viewDeclare(month) {
  const current = thisMonth();
  const months = [current, addMonths(current, -1)];
  month = /^\d{4}-\d{2}$/.test(month) ? month : current;
  if (months.indexOf(month) < 0) months.push(month);
  const year = month.slice(0, 4);
  const [decl, std] = await Promise.all([getJson(declarePath(month)), standard(year, state.member.org_id)]);
  const editable = (decl.status === "draft" || decl.status === "returned") && !!decl.open_until;
  const page = h("div", { class: "declare" });
  page.append(h("div", { class: "toolbar" },
    h("h2", { text: "月度申报" }),
    select(months.map((m) => [m, monthLabel(m)]), month, (m) => { location.hash = "#/declare/" + m; }, "申报月份")));
  page.append(declarationSummary(decl, editable));
  if (editable) page.append(declarationForm(decl, std, month));
  else page.append(declarationLines(decl, std));
  if (decl.id) page.append(await historyOf(decl.id));
  page.append(pastMonths(month));
  return page;
}

function declarationSummary(decl, editable) {
  const box = h("section", { class: "card summary", id: "decl-summary" });
  box.append(h("div", { class: "row" }, h("span", { text: monthLabel(decl.month) + "申报" }), statusBadge(decl.status)));
  const figures = h("div", { class: "figures" },
    h("div", {}, h("span", { class: "label", text: "申报分" }), h("span", { class: "value", id: "claimed-total", text: pts(decl.claimed_total) })));
  if (decl.approved_total !== undefined) {
    figures.append(h("div", {}, h("span", { class: "label", text: "核定分" }), h("span", { class: "value good", id: "approved-total", text: pts(decl.approved_total) })));
  }
  box.append(figures);
  if (decl.comment) box.append(h("p", { class: "comment", id: "decl-comment" }, h("b", { text: "书记意见：" }), decl.comment));
  if (editable) {
    box.append(h("p", { class: "muted", text: "可修改、提交至 " + timeLabel(decl.open_until, true) }));
    if (decl.status === "returned") box.append(h("p", { class: "muted", text: "申报已被退回，请按意见修改后重新提交。" }));
  } else if (decl.status === "draft") {
    box.append(h("p", { class: "muted", text: "该月申报已截止，不能再填写或提交；如需补报，请联系支部书记。" }));
  } else if (decl.submitted_at) {
    box.append(h("p", { class: "muted", text: "提交于 " + timeLabel(decl.submitted_at) + (decl.reviewed_at ? "，审核于 " + timeLabel(decl.reviewed_at) : "") }));
  }
  return box;
}

// The lines as they stand (read-only): the member's, then the branch's records of the month.
function declarationLines(decl, std) {
  const box = h("section", { class: "card lines", id: "decl-lines" });
  const own = decl.lines.filter((l) => l.source !== "branch");
  const branch = decl.lines.filter((l) => l.source === "branch");
  box.append(h("h3", { text: "申报项目" }));
  if (!own.length) box.append(h("p", { class: "muted", text: "本月没有申报项目。" }));
  for (const line of own) box.append(lineView(line, std));
  if (branch.length) {
    box.append(h("h3", { text: "支部记录（本月）" }));
    for (const line of branch) box.append(lineView(line, std));
  }
  return box;
}

function lineView(line, std) {
  const lowered = line.approved_points !== undefined && Number(line.approved_points) !== Number(line.claimed_points);
  const el = h("div", { class: "line", "data-item": line.item_code },
    h("div", { class: "row" },
      h("span", { class: "name", text: line.item_name || itemName(std, line.item_code) }),
      h("span", { class: "points" },
        line.source === "branch" ? "" : h("span", { class: lowered ? "struck" : "", text: pts(line.claimed_points) + " 分" }),
        line.approved_points !== undefined ? h("span", { class: "approved", text: " 核定 " + pts(line.approved_points) + " 分" }) : "")),
    h("div", { class: "muted", text: "数量 " + line.quantity + (line.note ? " · " + line.note : "") }));
  if (line.adjust_reason) el.append(h("p", { class: "reason", text: "调整理由：" + line.adjust_reason }));
  if (line.evidence && line.evidence.length) {
    el.append(h("div", { class: "thumbs" }, line.evidence.map((ref) => evidenceThumb(ref))));
  }
  return el;
}

// The editable declaration: the member's items by category with steppers, notes and evidence.
function declarationForm(decl, std, month) {
  const lines = new Map();
  for (const l of decl.lines) {
    if (l.source === "branch") continue;
    lines.set(l.item_code, { quantity: l.quantity, note: l.note || "", evidence: (l.evidence || []).slice() });
  }
  const items = std.items.filter((i) => i.declared_by === "member" && i.kind !== "veto");
  const form = h("div", { class: "form" });
  const totalEl = h("b", { id: "form-total", text: "0" });
  const recount = () => {
    let tenths = 0;
    for (const [code, line] of lines) {
      const item = std.byCode.get(code);
      if (item) tenths += Math.round(item.points * 10) * line.quantity;
    }
    totalEl.textContent = pts(tenths / 10);
  };
  for (const [category, list] of groupByCategory(std, items)) {
    const section = h("section", { class: "card category", "data-category": category });
    section.append(h("h3", { text: categoryTitle(std, category) }));
    for (const item of list) section.append(itemEditor(item, lines, recount));
    form.append(section);
  }
  const branch = decl.lines.filter((l) => l.source === "branch");
  if (branch.length) {
    const section = h("section", { class: "card" }, h("h3", { text: "支部记录（本月，由支部登记）" }));
    for (const line of branch) section.append(lineView(line, std));
    form.append(section);
  }
  recount();

  const payload = () => {
    const out = [];
    for (const [code, line] of lines) {
      if (line.quantity <= 0) continue;
      const item = std.byCode.get(code);
      if (item && item.evidence_required && !line.evidence.length) {
        throw new Error("「" + item.name + "」需要上传证明材料（拍照或从相册选择）");
      }
      const entry = { item_code: code, quantity: line.quantity, evidence: line.evidence };
      if (line.note) entry.note = line.note;
      out.push(entry);
    }
    return { lines: out };
  };
  const save = async () => send("PUT", declarePath(month), payload());
  form.append(h("div", { class: "actions" },
    h("span", { class: "total" }, "合计 ", totalEl, " 分"),
    button("保存草稿", "secondary", async () => {
      await save();
      flash("已保存草稿");
      route();
    }),
    button("提交审核", "primary", async () => {
      const body = payload();
      if (!body.lines.length) throw new Error("请至少申报一项");
      const saved = await send("PUT", declarePath(month), body);
      await send("POST", "/api/v1/declarations/" + saved.id + ":submit");
      flash("已提交，等待支部审核");
      route();
    })));
  return form;
}

function itemEditor(item, lines, recount) {
  const line = lines.get(item.code) || { quantity: 0, note: "", evidence: [] };
  const cap = item.monthly_cap !== undefined ? item.monthly_cap : item.yearly_cap;
  const max = cap !== undefined && item.points > 0 ? Math.max(1, Math.floor(cap / item.points + 1e-9)) : 20;
  const qty = h("span", { class: "qty", "aria-live": "polite", text: String(line.quantity) });
  const subtotal = h("span", { class: "subtotal" });
  const details = h("div", { class: "details" });
  const thumbs = h("div", { class: "thumbs" });
  const update = () => {
    qty.textContent = String(line.quantity);
    subtotal.textContent = line.quantity ? "= " + pts(line.quantity * item.points) + " 分" : "";
    details.hidden = line.quantity <= 0;
    minus.disabled = line.quantity <= 0;
    plus.disabled = line.quantity >= max;
    el.classList.toggle("chosen", line.quantity > 0);
    if (line.quantity > 0) lines.set(item.code, line);
    recount();
  };
  const step = (d) => { line.quantity = Math.min(max, Math.max(0, line.quantity + d)); update(); };
  const minus = h("button", { type: "button", class: "step minus", "aria-label": "减少「" + item.name + "」", text: "−", onclick: () => step(-1) });
  const plus = h("button", { type: "button", class: "step plus", "aria-label": "增加「" + item.name + "」", text: "+", onclick: () => step(1) });
  const drawThumbs = () => {
    thumbs.replaceChildren(...line.evidence.map((ref) => evidenceThumb(ref, () => {
      line.evidence = line.evidence.filter((r) => r !== ref);
      drawThumbs();
    })));
  };
  const status = h("span", { class: "muted upload-status" });
  const upload = async (input) => {
    const files = Array.prototype.slice.call(input.files || []);
    input.value = "";
    for (const file of files) {
      status.textContent = "上传中…";
      showError(null);
      try {
        const form = new FormData();
        form.append("file", file, file.name || "photo.jpg");
        const answer = await (await api("/api/v1/evidence", { method: "POST", body: form })).json();
        if (line.evidence.indexOf(answer.reference) < 0) line.evidence.push(answer.reference);
        if (!state.evidence[answer.reference] && file.type.indexOf("image/") === 0) {
          state.evidence[answer.reference] = await dataUrl(file);
        }
        drawThumbs();
        status.textContent = "";
      } catch (e) {
        status.textContent = "";
        showError(e);
      }
    }
  };
  const camera = h("input", { type: "file", accept: "image/*", capture: "environment", class: "camera", "aria-label": "拍照上传" });
  const gallery = h("input", { type: "file", accept: "image/*,application/pdf", multiple: true, class: "gallery", "aria-label": "从相册选择" });
  camera.addEventListener("change", () => upload(camera));
  gallery.addEventListener("change", () => upload(gallery));
  const note = h("input", { type: "text", class: "note", maxlength: "200", placeholder: "备注（选填）：时间、地点、内容", value: line.note });
  note.addEventListener("input", () => { line.note = note.value.trim(); });
  details.append(note,
    h("div", { class: "evidence" },
      h("span", { class: "label", text: item.evidence_required ? "证明材料（必传）" : "证明材料（选传）" }),
      thumbs,
      h("div", { class: "pickers" },
        h("label", { class: "picker" }, "拍照", camera),
        h("label", { class: "picker" }, "相册", gallery),
        status)));
  const capText = item.monthly_cap !== undefined ? "每月上限 " + pts(item.monthly_cap) + " 分"
    : item.yearly_cap !== undefined ? "全年上限 " + pts(item.yearly_cap) + " 分" : "不设上限";
  const el = h("div", { class: "item", "data-item": item.code },
    h("div", { class: "row" },
      h("span", { class: "name", text: item.name }),
      h("span", { class: "per", text: signed(item.points) + " 分/" + item.unit })),
    h("div", { class: "row" },
      h("span", { class: "muted", text: capText + (item.evidence_required ? " · 需证明材料" : "") }),
      h("span", { class: "stepper" }, minus, qty, plus)),
    h("div", { class: "row end" }, subtotal),
    details);
  update();
  drawThumbs();
  return el;
}

async function historyOf(id) {
  const box = h("section", { class: "card history", id: "decl-history" }, h("h3", { text: "办理记录" }));
  try {
    const history = await getJson("/api/v1/declarations/" + id + "/history");
    const list = h("ol", { class: "timeline" });
    const words = { created: "创建", submitted: "提交", "changed after being returned": "退回后修改" };
    for (const t of history.items || []) {
      // A comment or the lowered lines stand out; the service's own words are a label.
      const said = t.reason && !words[t.reason];
      list.append(h("li", {},
        h("span", { class: "muted", text: timeLabel(t.at) + " " + (t.actor_name || "") + " " }),
        h("span", { text: (words[t.reason] ? words[t.reason] + " → " : "") + (STATUS[t.to] || t.to) }),
        said ? h("div", { class: "reason", text: t.reason }) : ""));
    }
    box.append(list);
  } catch (e) {
    box.append(h("p", { class: "muted", text: problemText(e) }));
  }
  return box;
}

// The member's earlier months of the year: there is no list endpoint for one member, so the
// months from January to now are read one by one (at most twelve small answers).
function pastMonths(shown) {
  const box = h("section", { class: "card past", id: "past-months" }, h("h3", { text: "本年申报记录" }));
  const list = h("div", { class: "list" }, h("p", { class: "muted", text: "加载中…" }));
  box.append(list);
  const now = thisMonth();
  const year = shown.slice(0, 4);
  const last = now.slice(0, 4) === year ? Number(now.slice(5)) : 12;
  const months = [];
  for (let m = last; m >= 1; m--) months.push(monthKey(Number(year), m));
  Promise.all(months.map((m) => getJson(declarePath(m)).catch(() => null))).then((answers) => {
    const rows = answers.filter((d) => d && d.id);
    list.replaceChildren();
    if (!rows.length) list.append(h("p", { class: "muted", text: "暂无记录。" }));
    for (const d of rows) {
      list.append(h("a", { class: "list-row" + (d.month === shown ? " current" : ""), href: "#/declare/" + d.month },
        h("span", { text: monthLabel(d.month) }),
        statusBadge(d.status),
        h("span", { class: "right", text: d.approved_total !== undefined ? "核定 " + pts(d.approved_total) + " 分" : "申报 " + pts(d.claimed_total) + " 分" })));
    }
  });
  return box;
}

// --- 台账: the year's points ledger ---------------------------------------------------------

async function viewLedger(year) {
  const now = shanghaiNow().y;
  year = /^\d{4}$/.test(year) ? year : String(now);
  const [ledger, std] = await Promise.all([
    getJson("/api/v1/members/" + state.member.id + "/ledger?year=" + year),
    standard(year, state.member.org_id).catch(() => null),
  ]);
  const page = h("div", { class: "ledger" });
  page.append(h("div", { class: "toolbar" },
    h("h2", { text: "积分台账" }),
    select([String(now), String(now - 1)].map((y) => [y, y + "年"]), year, (y) => { location.hash = "#/ledger/" + y; }, "年度")));
  page.append(h("section", { class: "card totals" },
    h("div", { class: "big" }, h("span", { class: "label", text: "年度总分" }), h("span", { class: "value", id: "ledger-total", text: pts(ledger.total) })),
    h("div", { class: "figures four" },
      figure("基础分", ledger.base_points, "ledger-base"),
      figure("奖励分", ledger.bonus_points, "ledger-bonus"),
      figure("扣分", ledger.deduction_points, "ledger-deduction"),
      figure("评议分", ledger.evaluation_points, "ledger-evaluation")),
    h("p", { class: "muted", text: "合计已按各项目、各类别和基础分、奖励分的上限计算；下面的明细为原始分值。" })));
  const entries = ledger.entries || [];
  if (!entries.length) page.append(h("section", { class: "card" }, h("p", { class: "muted", text: "本年度还没有积分记录。" })));
  const byCategory = new Map();
  for (const e of entries) {
    const item = std && std.byCode.get(e.item_code);
    const cat = item ? item.category : "?";
    if (!byCategory.has(cat)) byCategory.set(cat, []);
    byCategory.get(cat).push(e);
  }
  const order = std ? (std.categories || []).map((c) => c.code) : [];
  const cats = [...byCategory.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  for (const cat of cats) {
    const list = byCategory.get(cat).slice().sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : 0));
    const sum = list.reduce((s, e) => s + Math.round(e.points * 10), 0) / 10;
    const section = h("section", { class: "card category", "data-category": cat },
      h("div", { class: "row" }, h("h3", { text: std ? categoryTitle(std, cat) : cat }), h("span", { class: "sum", text: signed(sum) + " 分" })));
    for (const e of list) {
      section.append(h("div", { class: "entry", "data-item": e.item_code },
        h("span", { class: "month", text: Number(e.month.slice(5)) + "月" }),
        h("span", { class: "name" }, itemName(std, e.item_code), h("small", { text: e.source === "branch" ? " 支部记录" : " 个人申报" })),
        h("span", { class: "points", text: signed(e.points) })));
    }
    page.append(section);
  }
  const quarters = ledger.quarters || [];
  if (quarters.length) {
    const section = h("section", { class: "card" }, h("h3", { text: "季度群众评议" }));
    for (const q of quarters) {
      section.append(h("div", { class: "entry" },
        h("span", { class: "month", text: q.quarter.slice(5) }),
        h("span", { class: "name", text: q.ballots + " 票" + (q.valid ? "" : "（票数不足，不计）") }),
        h("span", { class: "points", text: q.score !== undefined && q.score !== null ? pts(q.score) : "—" })));
    }
    page.append(section);
  }
  return page;
}

function figure(label, value, id) {
  return h("div", {}, h("span", { class: "label", text: label }), h("span", { class: "value", id, text: pts(value) }));
}

// --- 定级: the member's grade, once published, and an appeal --------------------------------

function reasonText(code, std) {
  const fixed = {
    excellent_quota: "优秀名额已满：按总分排序未进入本支部优秀比例",
    poor_mass_rating: "有季度群众评议“差”的比例超过规定，不能评为优秀",
    no_valid_evaluation: "没有有效的季度群众评议，评议分计 0 分",
    "probation:on_time": "预备党员：建议按期转正",
    "probation:extend": "预备党员：建议延长预备期",
    "probation:review_cancellation": "预备党员：建议研究是否取消预备党员资格",
    below_60_two_years: "连续两年积分低于 60 分",
    lapse_suspected: "连续多月没有组织生活或党费记录，请与支部联系",
  };
  if (fixed[code]) return fixed[code];
  const [kind, what] = code.split(":");
  const name = SANCTION[what] || (std ? itemName(std, what) : what);
  if (kind === "veto") return "一票否决：" + name;
  if (kind === "sanction") return "受党纪处分：" + name;
  if (kind === "capped") return "等次受限：" + name;
  return code;
}

async function viewGrade(year) {
  const now = shanghaiNow().y;
  year = /^\d{4}$/.test(year) ? year : String(now);
  const page = h("div", { class: "grade" });
  page.append(h("div", { class: "toolbar" },
    h("h2", { text: "年度定级" }),
    select([String(now), String(now - 1)].map((y) => [y, y + "年"]), year, (y) => { location.hash = "#/grade/" + y; }, "年度")));
  let grading = null;
  try {
    grading = await getJson("/api/v1/orgs/" + state.branchId + "/gradings/" + year);
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 404)) throw e;
  }
  const mine = grading && grading.status !== "proposed" && (grading.members || []).filter((m) => m.member_id === state.member.id)[0];
  if (!mine) {
    page.append(h("section", { class: "card", id: "grade-card" },
      h("p", { class: "empty", text: year + " 年度定级尚未公示" }),
      h("p", { class: "muted", text: "支部确认定级并公示后，这里会显示您的等次和理由。" })));
    return page;
  }
  const std = await standard(year, state.member.org_id).catch(() => null);
  const grade = mine.grade || mine.proposed_grade;
  const card = h("section", { class: "card", id: "grade-card" },
    h("div", { class: "row" }, h("span", { text: year + " 年度" }), h("span", { class: "badge", text: GRADING_STATUS[grading.status] || grading.status })),
    h("p", { class: "grade-value grade-" + grade, id: "grade-value", text: GRADE[grade] || grade }),
    h("div", { class: "figures" },
      figure("总分", mine.total), figure("申报积分", mine.declared_points), figure("评议分", mine.evaluation_points)));
  if (mine.override_reason) card.append(h("p", { class: "reason", text: "支部调整理由：" + mine.override_reason }));
  if (mine.reasons && mine.reasons.length) {
    card.append(h("h3", { text: "说明" }), h("ul", { class: "reasons" }, mine.reasons.map((r) => h("li", { text: reasonText(r, std) }))));
  }
  page.append(card);
  if (grading.status === "confirmed") {
    const reason = h("textarea", { rows: "4", maxlength: "1000", placeholder: "请写明对定级结果有异议的理由" });
    const section = h("section", { class: "card appeal" });
    section.append(
      h("h3", { text: "申诉" }),
      h("p", { class: "muted", text: "公示期内对定级结果有异议的，可以向上级党组织申诉。" }),
      reason,
      button("提交申诉", "primary wide", async () => {
        if (!reason.value.trim()) throw new Error("请填写申诉理由");
        const appeal = await send("POST", "/api/v1/members/" + state.member.id + "/gradings/" + year + "/appeals", { reason: reason.value.trim() });
        section.replaceChildren(h("h3", { text: "申诉" }),
          h("p", { text: "申诉理由：" + appeal.reason }),
          h("p", { class: "muted", text: "已于 " + timeLabel(appeal.filed_at) + " 提交，等待上级党组织处理。" }));
        notice("申诉已提交，请等待上级党组织处理");
      }));
    page.append(section);
  }
  return page;
}

// --- 审核: the secretary's review queue -----------------------------------------------------

function reviewMonths() {
  const now = thisMonth();
  const out = [];
  for (let i = 0; i < 12; i++) out.push(addMonths(now, -i));
  return out;
}

function orgPicker() {
  if (state.secretaryOrgs.length < 2) return "";
  return select(state.secretaryOrgs.map((o) => [o.id, o.name]), state.reviewOrg.id, (id) => {
    state.reviewOrg = state.secretaryOrgs.filter((o) => o.id === id)[0];
    route();
  }, "支部");
}

async function viewReview(month) {
  const months = reviewMonths();
  month = /^\d{4}-\d{2}$/.test(month) ? month : months[0];
  if (months.indexOf(month) < 0) months.push(month);
  const org = state.reviewOrg;
  const status = sessionStorage.getItem("jifen-review-status") || "submitted";
  const [list, names, board] = await Promise.all([
    getAll("/api/v1/orgs/" + org.id + "/declarations?month=" + month + "&status=" + status),
    memberNames(org.id),
    getJson("/api/v1/dashboard/orgs/" + org.id + "?month=" + month).catch(() => null),
  ]);
  for (const d of list) state.queue[d.id] = d;
  const page = h("div", { class: "review" });
  page.append(h("div", { class: "toolbar" },
    h("h2", { text: org.name }),
    orgPicker(),
    select(months.map((m) => [m, monthLabel(m)]), month, (m) => { location.hash = "#/review/" + m; }, "月份")));
  if (board) {
    page.append(h("section", { class: "card", id: "participation" },
      h("h3", { text: monthLabel(month) + "参与情况" }),
      h("div", { class: "figures four" },
        figure("党员", board.members), figure("已申报", board.declared),
        h("div", {}, h("span", { class: "label", text: "申报率" }), h("span", { class: "value", text: (board.participation_rate * 100).toFixed(0) + "%" })),
        figure("人均积分", board.approved_points_avg))));
  }
  page.append(h("div", { class: "row tools" },
    select([["submitted", "待审核"], ["approved", "已通过"], ["returned", "已退回"], ["rejected", "未通过"]], status, (s) => {
      sessionStorage.setItem("jifen-review-status", s);
      route();
    }, "状态"),
    h("a", { class: "button secondary", href: "#/records/" + month, text: "支部记录" })));
  const queue = h("section", { class: "card queue", id: "queue" });
  const chosen = new Set();
  const batch = button("批量通过（0）", "primary", async () => {
    if (!chosen.size) throw new Error("请先勾选要通过的申报");
    const answer = await send("POST", "/api/v1/orgs/" + org.id + "/declarations:batch-approve", { month, declaration_ids: [...chosen] });
    let text = "已通过 " + answer.approved + " 份";
    if (answer.skipped && answer.skipped.length) {
      text += "；" + answer.skipped.length + " 份未通过：" + answer.skipped.map((s) => CODES[s.reason] || s.reason).join("、");
    }
    flash(text);
    route();
  });
  const count = () => { batch.textContent = "批量通过（" + chosen.size + "）"; };
  if (!list.length) queue.append(h("p", { class: "muted", text: status === "submitted" ? "没有待审核的申报。" : "没有记录。" }));
  for (const d of list) {
    const member = names.get(d.member_id);
    const name = member ? member.name : d.member_id.slice(0, 8);
    const check = status === "submitted" ? h("input", { type: "checkbox", class: "pick", "aria-label": "选择" + name }) : "";
    if (check) check.addEventListener("change", () => { if (check.checked) chosen.add(d.id); else chosen.delete(d.id); count(); });
    const own = d.lines.filter((l) => l.source !== "branch").length;
    queue.append(h("div", { class: "queue-row", "data-member": d.member_id },
      check ? h("label", { class: "pick-box" }, check) : "",
      h("a", { class: "open", href: "#/check/" + d.id },
        h("span", { class: "name", text: name }),
        h("span", { class: "muted", text: own + " 项 · 申报 " + pts(d.claimed_total) + " 分" + (d.approved_total !== undefined ? " · 核定 " + pts(d.approved_total) + " 分" : "") }),
        h("span", { class: "chev", text: "›" }))));
  }
  page.append(queue);
  if (status === "submitted" && list.length) {
    const all = button("全选", "secondary", async () => {
      const boxes = queue.querySelectorAll("input.pick");
      const every = [...boxes].every((b) => b.checked);
      for (const b of boxes) { b.checked = !every; b.dispatchEvent(new Event("change")); }
    });
    page.append(h("div", { class: "actions" }, all, batch));
  }
  return page;
}

async function viewCheck(id) {
  const d = state.queue[id];
  if (!d) { location.replace("#/review"); return null; }
  const org = state.reviewOrg;
  const [names, std] = await Promise.all([memberNames(org.id), standard(d.month.slice(0, 4), d.org_id).catch(() => null)]);
  const member = names.get(d.member_id);
  const page = h("div", { class: "check" });
  page.append(h("div", { class: "toolbar" },
    h("a", { class: "back", href: "#/review/" + d.month, text: "‹ 返回" }),
    h("h2", { text: (member ? member.name : "") + " · " + monthLabel(d.month) })));
  page.append(declarationSummary(d, false));
  const reviewable = d.status === "submitted";
  const inputs = [];
  const box = h("section", { class: "card lines", id: "check-lines" }, h("h3", { text: "申报项目" }));
  for (const line of d.lines.filter((l) => l.source !== "branch")) {
    const el = lineView(line, std);
    if (reviewable) {
      const points = h("input", { type: "number", inputmode: "decimal", step: "0.1", min: "0", max: String(line.claimed_points), class: "approve-points", value: pts(line.claimed_points), "aria-label": "核定分" });
      const reason = h("input", { type: "text", class: "adjust-reason", maxlength: "200", placeholder: "调减理由（调减时必填）" });
      const reasonRow = h("label", { class: "field" }, "调减理由", reason);
      const sync = () => { reasonRow.hidden = !(Number(points.value) < Number(line.claimed_points)); };
      points.addEventListener("input", sync);
      sync();
      el.append(h("div", { class: "adjust" }, h("label", { class: "field inline" }, "核定分", points), reasonRow));
      inputs.push({ line, points, reason });
    }
    box.append(el);
  }
  const branch = d.lines.filter((l) => l.source === "branch");
  if (branch.length) {
    box.append(h("h3", { text: "支部记录（本月）" }));
    for (const line of branch) box.append(lineView(line, std));
  }
  page.append(box);
  if (d.id) page.append(await historyOf(d.id));
  if (!reviewable) return page;
  const comment = h("textarea", { rows: "3", maxlength: "1000", class: "comment-input", placeholder: "审核意见（退回、不通过时必填）" });
  const review = async (decision) => {
    const body = { decision };
    if (decision === "approve") {
      const lines = [];
      for (const { line, points, reason } of inputs) {
        const value = Number(points.value);
        if (points.value === "" || !isFinite(value) || value < 0 || value > Number(line.claimed_points) + 1e-9) {
          throw new Error("「" + (line.item_name || line.item_code) + "」的核定分须在 0 到 " + pts(line.claimed_points) + " 之间");
        }
        if (Math.round(value * 10) !== Math.round(line.claimed_points * 10)) {
          if (!reason.value.trim()) throw new Error("调减「" + (line.item_name || line.item_code) + "」须填写理由");
          lines.push({ line_id: line.line_id, approved_points: Math.round(value * 10) / 10, reason: reason.value.trim() });
        }
      }
      if (lines.length) body.lines = lines;
    } else if (!comment.value.trim()) {
      throw new Error(decision === "return" ? "退回须填写意见" : "不通过须填写意见");
    }
    if (comment.value.trim()) body.comment = comment.value.trim();
    const answer = await send("POST", "/api/v1/declarations/" + d.id + ":review", body);
    state.queue[d.id] = answer;
    flash((member ? member.name : "") + " 的申报" + STATUS[answer.status] + (answer.approved_total !== undefined ? "，核定 " + pts(answer.approved_total) + " 分" : ""));
    location.hash = "#/review/" + d.month;
  };
  page.append(h("section", { class: "card" }, h("h3", { text: "审核意见" }), comment));
  page.append(h("div", { class: "actions three" },
    button("退回", "secondary", () => review("return")),
    button("不通过", "danger", () => review("reject")),
    button("通过", "primary", () => review("approve"))));
  return page;
}

// --- 支部记录: attendance, dues and the branch's other items --------------------------------

async function viewRecords(month) {
  month = /^\d{4}-\d{2}$/.test(month) ? month : thisMonth();
  const org = state.reviewOrg;
  const [std, names, records] = await Promise.all([
    standard(month.slice(0, 4), org.id),
    memberNames(org.id),
    getAll("/api/v1/orgs/" + org.id + "/branch-records?month=" + month).catch(() => []),
  ]);
  const page = h("div", { class: "records" });
  page.append(h("div", { class: "toolbar" },
    h("a", { class: "back", href: "#/review/" + month, text: "‹ 返回" }),
    h("h2", { text: "支部记录 · " + monthLabel(month) })));
  const items = std.items.filter((i) => i.declared_by === "branch");
  const itemSelect = h("select", { "aria-label": "项目" });
  for (const [cat, list] of groupByCategory(std, items)) {
    const group = h("optgroup", { label: categoryTitle(std, cat) });
    for (const i of list) group.append(h("option", { value: i.code, text: i.name + "（" + signed(i.points) + " 分/" + i.unit + "）" }));
    itemSelect.append(group);
  }
  const quantity = h("input", { type: "number", inputmode: "numeric", min: "1", step: "1", value: "1", "aria-label": "数量" });
  const note = h("input", { type: "text", maxlength: "200", placeholder: "备注（选填）" });
  // Nobody records their own points (the service refuses it): the secretary's own name is
  // left off the list, and a note says who records them.
  const active = [...names.values()].filter((m) => m.status === "active" && m.id !== state.me.member_id);
  const checks = active.map((m) => {
    const c = h("input", { type: "checkbox", value: m.id });
    return { c, row: h("label", { class: "check-row" }, c, h("span", { text: m.name })) };
  });
  page.append(h("section", { class: "card form" },
    h("h3", { text: "登记" }),
    h("label", { class: "field" }, "项目", itemSelect),
    h("label", { class: "field" }, "数量", quantity),
    h("label", { class: "field" }, "备注", note),
    h("div", { class: "row" }, h("span", { class: "label", text: "党员" }), button("全选", "link", async () => {
      const every = checks.every((x) => x.c.checked);
      for (const x of checks) x.c.checked = !every;
    })),
    h("div", { class: "members" }, checks.map((x) => x.row)),
    state.me.member_id && names.has(state.me.member_id)
      ? h("p", { class: "muted", text: "您本人的支部记录由上级党组织登记。" })
      : null,
    button("登记", "primary wide", async () => {
      const chosen = checks.filter((x) => x.c.checked).map((x) => x.c.value);
      if (!chosen.length) throw new Error("请选择党员");
      const q = Number(quantity.value);
      if (!Number.isInteger(q) || q < 1) throw new Error("数量须为正整数");
      const entries = chosen.map((id) => {
        const e = { member_id: id, item_code: itemSelect.value, quantity: q };
        if (note.value.trim()) e.note = note.value.trim();
        return e;
      });
      await send("POST", "/api/v1/orgs/" + org.id + "/branch-records", { month, entries });
      flash("已登记 " + entries.length + " 人：" + itemName(std, itemSelect.value));
      route();
    })));
  const list = h("section", { class: "card", id: "records-list" }, h("h3", { text: "本月已登记" }));
  const live = records.filter((r) => !r.revoked);
  if (!live.length) list.append(h("p", { class: "muted", text: "暂无。" }));
  for (const r of live) {
    const m = names.get(r.member_id);
    list.append(h("div", { class: "entry" },
      h("span", { class: "month", text: m ? m.name : "" }),
      h("span", { class: "name", text: itemName(std, r.item_code) + " × " + r.quantity + (r.note ? " · " + r.note : "") }),
      h("span", { class: "points", text: signed(r.points) })));
  }
  page.append(list);
  return page;
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  window.addEventListener("hashchange", route);
  if (state.token) {
    start().catch((e) => logout(problemText(e)));
  }
});
