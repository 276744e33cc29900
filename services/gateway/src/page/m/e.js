// 民主评议: the page a slip's QR code opens (GET /m/e#ABCD-EFGH-JKMN). Plain JavaScript that
// Chromium 100 and iOS Safari 15 run (WeChat's in-app browser), no build step, nothing from
// another origin (the page is served with a self-only content security policy).
//
// It speaks only the public API, with relative paths (so a path prefix in JIFEN_PUBLIC_URL works):
//   POST ../api/v1/auth/evaluator {"code"}            → an evaluator token for the code's round
//   GET  ../api/v1/evaluation-rounds/{id}/ballot      → the quarter and the roster
//   POST ../api/v1/evaluation-rounds/{id}/ballots     → 201, once per code
//   POST ../api/v1/auth/login {"username","password"} → a member's own token, only for a member
//                                                        code (党员评议), sent with its exchange
//
// Anonymity and privacy (docs/evaluator-anonymity.md): the code arrives in the URL fragment,
// which no server sees, and is removed from the address bar at once; the code and the token
// live in variables of this script only — no cookie, no localStorage or sessionStorage, no
// Idempotency-Key (a code votes once, so a retry can never count twice). Closing the tab
// leaves nothing behind.
"use strict";

// Script errors and policy violations, kept for the browser tests (crates/e2e, browser.rs).
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__errors.push("csp " + e.violatedDirective + " " + e.blockedURI));

const API = "../api/v1/";
const ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_LENGTH = 12;
const RATINGS = [
  { value: "excellent", label: "好" },
  { value: "good", label: "较好" },
  { value: "fair", label: "一般" },
  { value: "poor", label: "差" },
];
const SKIP = "skip";
const QUARTERS = ["", "第一季度", "第二季度", "第三季度", "第四季度"];

// Everything the page knows, in memory only.
const state = {
  code: null, // the normalized code, kept to redeem again if the token expires
  token: null,
  memberToken: null, // a member's own access token, for redeeming a member code only
  roundId: null,
  quarter: "",
  kind: null,
  members: [],
  choices: {}, // member_id → rating value or SKIP
  sending: false,
  done: false,
  view: "loading",
};

const $ = (id) => document.getElementById(id);

function show(view) {
  state.view = view;
  const views = ["loading", "code", "login", "ballot", "confirm", "done", "error"];
  for (let i = 0; i < views.length; i++) {
    $("view-" + views[i]).hidden = views[i] !== view;
  }
  window.scrollTo(0, 0);
}

// ---- the code -------------------------------------------------------------------------

// What a person typed or a QR code carried → the 12 symbols, or null. Full-width letters and
// digits (a Chinese input method's) count as their ASCII forms; case, spaces and dashes are
// ignored, as the evaluations service does.
function normalize(text) {
  let out = "";
  for (const ch of String(text)) {
    let c = ch;
    const n = c.charCodeAt(0);
    if (n >= 0xff01 && n <= 0xff5e) c = String.fromCharCode(n - 0xfee0);
    if (/[\s\-‐‑‒–—―－_]/.test(c)) continue;
    out += c.toUpperCase();
  }
  return out;
}

// Why a normalized code cannot be one, in words; "" when it may be.
function codeProblem(code) {
  if (code.length === 0) return "请输入邀请码。";
  for (const c of code) {
    if (ALPHABET.indexOf(c) < 0) {
      if ("01ILOU".indexOf(c) >= 0) {
        return "邀请码中没有 0、1、I、L、O、U，请核对“" + c + "”是不是相近的字符。";
      }
      return "邀请码只有字母和数字，“" + c + "”不在其中，请核对。";
    }
  }
  if (code.length !== CODE_LENGTH) {
    return "邀请码是 12 位字母和数字，您输入了 " + code.length + " 位，请核对。";
  }
  return "";
}

function grouped(code) {
  return code.slice(0, 4) + "-" + code.slice(4, 8) + "-" + code.slice(8);
}

function quarterText(quarter) {
  const m = /^(\d{4})-Q([1-4])$/.exec(quarter || "");
  return m ? m[1] + "年" + QUARTERS[Number(m[2])] : quarter || "";
}

// ---- talking to the API ---------------------------------------------------------------

// A refusal: `kind` says what the person is told (see `explain`).
function Refusal(kind, problem, retryAfter) {
  this.kind = kind;
  this.problem = problem || {};
  this.retryAfter = retryAfter || 0;
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  // A member code is redeemed with the member's own token; every other call carries the
  // evaluator token (and a login, none).
  const bearer = path === "auth/evaluator" ? state.memberToken : path === "auth/login" ? null : state.token;
  if (bearer) headers.authorization = "Bearer " + bearer;
  let response;
  try {
    response = await fetch(API + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch (_) {
    throw new Refusal("network");
  }
  let answer = {};
  try {
    answer = await response.json();
  } catch (_) { /* an empty or non-JSON body */ }
  if (response.ok) return answer;
  const code = answer && answer.code;
  if (response.status === 429) {
    const wait = parseInt(response.headers.get("retry-after") || "", 10);
    throw new Refusal("rate_limited", answer, isNaN(wait) ? 60 : wait);
  }
  if (response.status >= 500) throw new Refusal("server", answer);
  const known = {
    invalid_code: "unknown_code",
    code_used: "code_used",
    round_closed: "round_closed",
    member_login_required: "member_login_required",
    not_on_roster: "not_on_roster",
    masses_code_for_member: "masses_code_for_member",
    invalid_token: "expired",
    invalid_credentials: "bad_login",
  };
  if (typeof code === "string" && Object.prototype.hasOwnProperty.call(known, code)) {
    throw new Refusal(known[code], answer);
  }
  if (response.status === 400 && path === "auth/evaluator") throw new Refusal("bad_code", answer);
  if (response.status === 401) throw new Refusal("expired", answer);
  if (response.status === 400) throw new Refusal("changed", answer);
  throw new Refusal("refused", answer);
}

async function redeem() {
  state.token = null;
  const answer = await call("POST", "auth/evaluator", { code: state.code });
  state.token = answer.access_token;
  state.roundId = answer.round_id;
  state.quarter = answer.quarter || "";
  state.kind = answer.evaluator_kind || null;
}

// Calls `fn`; when the evaluator token has expired (30 minutes at most), redeems the code again
// (redeeming does not use it up) and calls once more.
async function withToken(fn) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof Refusal) || e.kind !== "expired" || !state.code) throw e;
    await redeem();
    return fn();
  }
}

// ---- what each refusal says ------------------------------------------------------------

function explain(refusal, during) {
  const seconds = refusal.retryAfter;
  switch (refusal.kind) {
    case "bad_code":
      return { field: "邀请码格式不对：应为 12 位字母和数字，如 ABCD-EFGH-JKMN。" };
    case "unknown_code":
      return { field: "没有这个邀请码，请核对后重新输入（注意相近的字符，如 8 和 B、5 和 S）。" };
    case "code_used":
      return during === "submit"
        ? {
          title: "此邀请码已投票",
          text: "这个邀请码已经投过票。如果刚才的提交因网络中断没有显示结果，那次提交已经记录，无需再投。",
          other: true,
        }
        : {
          title: "邀请码已使用",
          text: "这个邀请码已使用，已经投过票了。每个邀请码只能投票一次，感谢您的参与！",
          other: true,
        };
    case "round_closed":
      return {
        title: "评议已结束",
        text: during === "submit"
          ? "本轮评议在您提交之前已经结束，这次评议没有被记录。"
          : "这个邀请码所属的评议已经结束，不能再投票。",
        other: true,
      };
    case "member_login_required":
      return {
        title: "需要党员本人登录",
        text: "这是党员评议邀请码，需要先登录党员本人的账号才能使用。请在党员积分系统中登录后再评议。",
        other: true,
      };
    case "not_on_roster":
      return {
        title: "不在评议名单中",
        text: "您登录的账号不在这个支部的评议名单中，不能使用这个邀请码。",
        other: true,
      };
    case "masses_code_for_member":
      return {
        title: "请使用党员评议码",
        text: "这是群众评议邀请码。您是本支部党员，请使用党员评议邀请码参加评议（党员评议时不会对自己评分）。",
        other: true,
      };
    case "expired":
      return {
        title: "页面已过期",
        text: "评议页面打开太久已过期，请重新扫描二维码或输入邀请码。",
        other: true,
      };
    case "rate_limited":
      return {
        title: "尝试次数过多",
        text: "这台设备所在网络的尝试次数过多，请在 " + seconds + " 秒后再试。",
        retry: true,
        wait: seconds,
      };
    case "network":
      return {
        title: "网络连接失败",
        text: during === "submit"
          ? "提交时网络中断，不确定是否已经送达。请检查网络后点“重试”：同一个邀请码只会记录一次，重试不会重复计票。"
          : "无法连接服务器，请检查网络后重试。",
        retry: true,
      };
    case "server":
      return {
        title: "服务器暂时无法处理",
        text: "服务器暂时无法处理您的请求，请稍后重试。您的选择还在本页上。",
        retry: true,
      };
    case "changed":
      return {
        title: "评议名单已变化",
        text: "评议名单已经变化，请重新扫描二维码或输入邀请码后再评议。",
        other: true,
      };
    default:
      return {
        title: "无法评议",
        text: "这个邀请码不能用于评议，请联系发放邀请码的党支部。",
        other: true,
      };
  }
}

let retryAction = null;
let retryTimer = null;

function showRefusal(refusal, during, retry) {
  if (!(refusal instanceof Refusal)) {
    window.__errors.push(String(refusal && refusal.message ? refusal.message : refusal));
    refusal = new Refusal("server");
  }
  if (refusal.kind === "member_login_required" && state.code) {
    askForLogin("");
    return;
  }
  const words = explain(refusal, during);
  if (words.field) {
    show("code");
    $("code-error").textContent = words.field;
    $("code-input").setAttribute("aria-invalid", "true");
    $("code-input").focus();
    return;
  }
  if (refusal.kind !== "network" && refusal.kind !== "server" && refusal.kind !== "rate_limited") {
    // The code is of no further use on this page.
    state.code = null;
    state.token = null;
    state.memberToken = null;
  }
  $("error-title").textContent = words.title;
  $("error-text").textContent = words.text;
  const retryButton = $("error-retry");
  retryButton.hidden = !words.retry;
  retryAction = retry;
  if (retryTimer) clearInterval(retryTimer);
  retryButton.disabled = false;
  retryButton.textContent = "重试";
  if (words.wait) {
    let left = words.wait;
    retryButton.disabled = true;
    retryButton.textContent = "请等待 " + left + " 秒";
    retryTimer = setInterval(() => {
      left -= 1;
      if (left <= 0) {
        clearInterval(retryTimer);
        retryTimer = null;
        retryButton.disabled = false;
        retryButton.textContent = "重试";
      } else {
        retryButton.textContent = "请等待 " + left + " 秒";
      }
    }, 1000);
  }
  $("error-other").hidden = !words.other && !(words.retry && during !== "submit");
  show("error");
}

// ---- opening a ballot -------------------------------------------------------------------

async function openBallot(code) {
  state.code = code;
  plainHeader();
  $("loading-text").textContent = "正在核对邀请码…";
  show("loading");
  try {
    await redeem();
    const ballot = await withToken(() => call("GET", "evaluation-rounds/" + state.roundId + "/ballot"));
    state.quarter = ballot.quarter || state.quarter;
    state.kind = ballot.evaluator_kind || state.kind;
    state.members = ballot.members || [];
    state.choices = {};
    renderBallot();
    show("ballot");
  } catch (e) {
    showRefusal(e, "open", () => openBallot(code));
  }
}

function setTitle() {
  const what = state.kind === "member" ? "党员互评" : "群众评议";
  $("title").textContent = quarterText(state.quarter) + what;
  document.title = what + " · 党员积分制管理";
  $("subtitle").textContent = "民主评议党员 · 共 " + state.members.length + " 名党员";
}

function renderBallot() {
  setTitle();
  $("ballot-intro").textContent =
    "请对下列每一名党员作出评价：好、较好、一般或差。不了解的党员可以选择“不了解”，不作评价。";
  const roster = $("roster");
  roster.textContent = "";
  state.members.forEach((m, i) => {
    const item = document.createElement("li");
    item.className = "card";
    item.dataset.member = m.member_id;
    const name = document.createElement("h3");
    name.className = "name";
    name.id = "name-" + i;
    name.textContent = m.name;
    const number = document.createElement("span");
    number.className = "number";
    number.textContent = i + 1 + ".";
    name.insertBefore(number, name.firstChild);
    item.appendChild(name);
    const group = document.createElement("div");
    group.className = "ratings";
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", name.id);
    RATINGS.forEach((r) => {
      group.appendChild(choiceButton(m.member_id, r.value, r.label, "rating rating-" + r.value));
    });
    item.appendChild(group);
    item.appendChild(choiceButton(m.member_id, SKIP, "不了解，不评价", "skip"));
    roster.appendChild(item);
  });
  updateProgress();
}

function choiceButton(member, value, label, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  b.dataset.member = member;
  b.dataset.value = value;
  b.setAttribute("aria-pressed", "false");
  b.addEventListener("click", () => choose(member, value));
  return b;
}

function choose(member, value) {
  if (state.done || state.sending) return;
  state.choices[member] = value;
  const buttons = document.querySelectorAll("#roster button[data-member='" + member + "']");
  for (let i = 0; i < buttons.length; i++) {
    const pressed = buttons[i].dataset.value === value;
    buttons[i].setAttribute("aria-pressed", pressed ? "true" : "false");
  }
  const card = document.querySelector("#roster li[data-member='" + member + "']");
  if (card) card.classList.add("chosen");
  updateProgress();
}

function counts() {
  let decided = 0;
  let rated = 0;
  state.members.forEach((m) => {
    const c = state.choices[m.member_id];
    if (c) decided++;
    if (c && c !== SKIP) rated++;
  });
  return { decided: decided, rated: rated, total: state.members.length };
}

function updateProgress() {
  const n = counts();
  let text = "已评 " + n.decided + "/" + n.total;
  if (n.decided < n.total) text += "，还差 " + (n.total - n.decided) + " 名";
  else if (n.rated === 0) text += "，请至少评价一名党员";
  else text += "，可以提交";
  $("progress").textContent = text;
  $("review").disabled = !(n.decided === n.total && n.rated > 0);
}

// ---- confirming and submitting ----------------------------------------------------------

function label(value) {
  if (value === SKIP) return "不评价";
  for (let i = 0; i < RATINGS.length; i++) if (RATINGS[i].value === value) return RATINGS[i].label;
  return value;
}

function review() {
  const n = counts();
  if (state.done || n.decided !== n.total || n.rated === 0) return;
  const list = $("summary");
  list.textContent = "";
  state.members.forEach((m) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = m.name;
    const value = state.choices[m.member_id];
    const choice = document.createElement("span");
    choice.className = "what what-" + value;
    choice.textContent = label(value);
    li.appendChild(name);
    li.appendChild(choice);
    list.appendChild(li);
  });
  $("submit-error").textContent = "";
  $("submit").disabled = false;
  $("submit").textContent = "确认提交";
  // Android's back button (and WeChat's) returns to the ballot instead of leaving the page.
  history.pushState({ view: "confirm" }, "", location.pathname + location.search);
  show("confirm");
}

async function submit() {
  if (state.done || state.sending) return;
  state.sending = true;
  const button = $("submit");
  button.disabled = true;
  button.textContent = "正在提交…";
  $("back").disabled = true;
  const ratings = [];
  state.members.forEach((m) => {
    const value = state.choices[m.member_id];
    if (value && value !== SKIP) ratings.push({ member_id: m.member_id, rating: value });
  });
  try {
    await withToken(() =>
      call("POST", "evaluation-rounds/" + state.roundId + "/ballots", { ratings: ratings }));
    finish();
  } catch (e) {
    state.sending = false;
    $("back").disabled = false;
    button.disabled = false;
    button.textContent = "确认提交";
    showRefusal(e, "submit", () => { show("confirm"); submit(); });
  }
}

function finish() {
  state.done = true;
  state.sending = false;
  // Nothing of the ballot stays in memory either.
  state.code = null;
  state.token = null;
  state.memberToken = null;
  state.choices = {};
  $("roster").textContent = "";
  $("summary").textContent = "";
  history.replaceState({ view: "done" }, "", location.pathname + location.search);
  show("done");
}

// ---- start ------------------------------------------------------------------------------

// The header before a round is known.
function plainHeader() {
  $("title").textContent = "民主评议";
  $("subtitle").textContent = "党员积分制管理";
  document.title = "民主评议 · 党员积分制管理";
}

function askForLogin(message) {
  $("login-error").textContent = message || "";
  show("login");
  $("login-username").focus();
}

// A member code (党员评议): the member logs in, and the code is redeemed with that token. The
// member's token stays in this script's memory for the exchange and is dropped once the
// ballot is sent.
async function loginAndOpen() {
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  if (!username || !password) {
    $("login-error").textContent = "请输入用户名和密码。";
    return;
  }
  $("login-submit").disabled = true;
  $("login-error").textContent = "";
  try {
    const tokens = await call("POST", "auth/login", { username: username, password: password });
    state.memberToken = tokens.access_token;
    $("login-password").value = "";
    await openBallot(state.code);
  } catch (e) {
    if (e instanceof Refusal && (e.kind === "bad_login" || e.kind === "expired")) {
      $("login-error").textContent = "用户名或密码错误，请重新输入。";
    } else if (e instanceof Refusal && e.kind === "rate_limited") {
      $("login-error").textContent = "登录失败次数过多，请在 " + e.retryAfter + " 秒后再试。";
    } else if (e instanceof Refusal && e.kind === "network") {
      $("login-error").textContent = "无法连接服务器，请检查网络后重试。";
    } else {
      $("login-error").textContent = "暂时无法登录，请稍后重试。";
    }
  } finally {
    $("login-submit").disabled = false;
  }
}

function askForCode(message) {
  plainHeader();
  $("code-error").textContent = message || "";
  show("code");
}

function start() {
  $("code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("code-input");
    const code = normalize(input.value);
    const problem = codeProblem(code);
    if (problem) {
      $("code-error").textContent = problem;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    $("code-error").textContent = "";
    input.value = grouped(code);
    openBallot(code);
  });
  $("code-input").addEventListener("blur", () => {
    const code = normalize($("code-input").value);
    if (code.length === CODE_LENGTH && !codeProblem(code)) $("code-input").value = grouped(code);
  });
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loginAndOpen();
  });
  $("review").addEventListener("click", review);
  $("submit").addEventListener("click", submit);
  $("back").addEventListener("click", () => history.back());
  $("error-retry").addEventListener("click", () => { if (retryAction) retryAction(); });
  $("error-other").addEventListener("click", () => {
    $("code-input").value = "";
    askForCode("");
    $("code-input").focus();
  });
  window.addEventListener("popstate", () => {
    if (state.done) show("done");
    else if (state.view === "confirm") show("ballot");
  });

  // A QR code scanned while the page is open arrives as a new fragment.
  window.addEventListener("hashchange", () => {
    if (location.hash && !state.sending) fromFragment();
  });
  fromFragment();
}

// The code from the QR code's link, then out of the address bar and the history at once.
function fromFragment() {
  let fromLink = "";
  try {
    fromLink = decodeURIComponent(location.hash.replace(/^#/, ""));
  } catch (_) {
    fromLink = location.hash.replace(/^#/, "");
  }
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!fromLink) {
    askForCode("");
    return;
  }
  const code = normalize(fromLink);
  const problem = codeProblem(code);
  if (problem) {
    askForCode("链接中的邀请码不完整：" + problem);
    return;
  }
  state.done = false;
  $("code-input").value = grouped(code);
  openBallot(code);
}

start();
