// The supervisors' dashboard: reads the API with the user's token, draws with Plotly (served from the
// plotly package, never a CDN), drills down the chart, and refreshes by itself.
"use strict";

const T = {
  zh: { title: "党建服务链条 · 督办看板", asOf: "截至", signOut: "退出", token: "API 令牌", signIn: "进入",
        resolved: "已解决", replied: "已答复", open: "办理中", overdue: "超期", rates: "三率（按单位）",
        unit: "单位", response: "响应率", resolution: "解决率", satisfaction: "满意率",
        daily: "每日上报与办结", funnel: "七级链条办结分布", queue: "超期队列", title_: "诉求", status: "状态",
        due: "期限", refreshed: "更新于", atForm: "年-月-日 时:分", now: "现在", badAt: "请按 年-月-日 时:分 填写，如 2021-01-01 00:00", reported: "上报", closed: "办结", badToken: "令牌无效或无权查看",
        itself: "（本级）", window: "三率统计月份", days: "每日图表", history: "查看经过", close: "关闭",
        closures: "办结次数（含后被重新办理的）", settledNow: "现已办结",
        rated: "满意率（累计）", byResidents: "居民本人评价", ofRatings: "条评价",
        callbacks: "待回访（办结后未评价）", closedAt: "办结", waited: "天",
        statuses: { waiting: "待认领", claimed: "已认领", resolved: "已解决", replied: "已答复" } },
  en: { title: "Service chain · Supervisors' dashboard", asOf: "As of", signOut: "Sign out", token: "API token",
        signIn: "Open", resolved: "Resolved", replied: "Replied", open: "Open", overdue: "Overdue",
        rates: "The three rates, by unit", unit: "Unit", response: "Response", resolution: "Resolution",
        satisfaction: "Satisfaction", daily: "Reports and closures per day", funnel: "Settled at each of the seven steps",
        queue: "Overdue queue", title_: "Grievance", status: "Status", due: "Due", refreshed: "Refreshed",
        atForm: "yyyy-mm-dd hh:mm", now: "now", badAt: "Write it as yyyy-mm-dd hh:mm, e.g. 2021-01-01 00:00",
        reported: "reported", closed: "closed", badToken: "The token is not valid or may not see this",
        itself: " (itself)", window: "Rates over", days: "Daily chart", history: "History", close: "Close",
        closures: "Closures (counting those later reopened)", settledNow: "settled now",
        rated: "Satisfaction (all time)", byResidents: "given by residents themselves", ofRatings: "ratings",
        callbacks: "Callbacks owed (closed, not rated)", closedAt: "Closed", waited: "days",
        statuses: { waiting: "waiting", claimed: "claimed", resolved: "resolved", replied: "replied" } },
};
const REFRESH_MS = 30000;
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("lang") || "zh";
let unit = params.get("unit");
let trail = [];  // [{id, name}] from the reader's own unit down to the one shown
let ratesClickable = false;
let levels = null;  // the seven steps' names, from the engine (GET /chart/levels)
let shownAt = null;  // the "as of" the figures are of: the picker's, or the server's default

const $ = (id) => document.getElementById(id);
const pct = (r) => (r === null || r === undefined ? "—" : (r * 100).toFixed(1) + "%");
const token = () => localStorage.getItem("grievance-token");

// Every time on the page is in the server's display zone (GRIEVANCE_DISPLAY_TIMEZONE), whatever the browser's
// own, with the labels the CLI and the reports use ("2021-01-01 00:00 CST").
const zoneMeta = document.querySelector('meta[name="display-zone"]');
const ZONE = zoneMeta ? zoneMeta.content : "Asia/Shanghai";
const LABELS = zoneMeta ? JSON.parse(zoneMeta.dataset.labels) : { 480: "CST" };
const wallClock = new Intl.DateTimeFormat("en-US", { timeZone: ZONE, hourCycle: "h23", year: "numeric",
  month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
const pad = (n) => String(n).padStart(2, "0");
function wall(d) {  // the zone's wall clock at instant d: {year, month, day, hour, minute, second}
  const p = Object.fromEntries(wallClock.formatToParts(d).map((x) => [x.type, x.value]));
  return { year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24, minute: +p.minute, second: +p.second };
}
function offsetOf(d) {  // minutes the zone is ahead of UTC at instant d
  const w = wall(d);
  return Math.round((Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - d.getTime()) / 60e3);
}
function offsetText(minutes) {
  const a = Math.abs(minutes);
  return (minutes < 0 ? "-" : "+") + pad(Math.floor(a / 60)) + ":" + pad(a % 60);
}
function zoneLabel(d) { const m = offsetOf(d); return LABELS[m] || "UTC" + offsetText(m); }
function wallText(d) { const w = wall(d); return `${w.year}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}`; }
function shownTime(d) { return wallText(d) + " " + zoneLabel(d); }  // as the CLI and the reports write it
function instantAt(year, month, dayOf, hour, minute) {  // the instant the zone's wall clock reads so
  const guess = Date.UTC(year, month - 1, dayOf, hour, minute);
  const first = new Date(guess - offsetOf(new Date(guess)) * 60e3);
  return new Date(guess - offsetOf(first) * 60e3);
}
function isoWithOffset(d) {  // RFC 3339 in the display zone, for the API's `at`
  const w = wall(d);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}` +
    offsetText(offsetOf(d));
}
// The as-of field: written yyyy-mm-dd hh:mm in both languages (no browser's own date format, which follows
// the browser's language rather than the page's), and read back beside it in the page's language.
const AT_FORM = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{2}))?\s*$/;
function asOf() {  // the picked as-of, or null when none is: the server's default (the latest activity's)
  const m = AT_FORM.exec($("at").value);
  if (!m) return null;
  return instantAt(+m[1], +m[2], +m[3], +(m[4] || 0), +(m[5] || 0));
}
function atIsValid() {
  const v = $("at").value, m = AT_FORM.exec(v);
  const ok = !v.trim() || (m && +m[2] >= 1 && +m[2] <= 12 && +m[3] >= 1 && +m[3] <= 31 && +(m[4] || 0) < 24 &&
    +(m[5] || 0) < 60 && wall(asOf()).day === +m[3]);
  $("at").setCustomValidity(ok ? "" : T[lang].badAt);
  $("at").setAttribute("aria-invalid", ok ? "false" : "true");
  $("at").title = ok ? "" : T[lang].badAt;
  return ok;
}
function showAsOf() {  // the as-of shown, in the page's language and the display zone, labelled
  const at = asOf() || shownAt || new Date();
  const when = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", { timeZone: ZONE, dateStyle: "long",
    timeStyle: "short", hourCycle: "h23" }).format(at);
  $("at-shown").dateTime = isoWithOffset(at);
  $("at-shown").textContent = ($("at").value.trim() || shownAt ? "" : T[lang].now + " · ") + when + " " + zoneLabel(at);
}
function day(d, back) {  // the views count days in China Standard Time, whatever the display zone
  return new Date(d.getTime() + 8 * 3600e3 - back * 86400e3).toISOString().slice(0, 10);
}

async function api(path) {
  const res = await fetch("/api/v1" + path, { headers: { Authorization: "Bearer " + token() } });
  if (res.status === 401 || res.status === 403) throw Object.assign(new Error("auth"), { status: res.status });
  if (!res.ok) throw new Error((await res.json()).detail || res.statusText);
  return res.json();
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = T[lang][el.dataset.i18n]; });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = T[lang][el.dataset.i18nPlaceholder];
  });
  $("at").lang = document.documentElement.lang;
  atIsValid();
  showAsOf();
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  document.title = T[lang].title;
}

function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  trail.forEach((u, i) => {
    if (i) nav.append(Object.assign(document.createElement("span"), { textContent: "›" }));
    const a = Object.assign(document.createElement("a"), { textContent: u.name, href: "#" });
    a.dataset.unit = u.id;
    a.onclick = (ev) => { ev.preventDefault(); trail = trail.slice(0, i + 1); show(u.id); };
    nav.append(a);
  });
}

function cell(content) {
  const td = document.createElement("td");
  td.append(content);
  return td;
}

function levelName(level) {
  const found = levels && levels.find((l) => l.level === level);
  return found ? found[lang] : level;
}

// Whole counts step by whole numbers, from zero, however few there are.
function countAxis(values) {
  const top = Math.max(1, ...values);
  return { rangemode: "tozero", range: [0, top * 1.08], tickformat: ",d", dtick: top <= 8 ? 1 : undefined };
}

async function openHistory(g) {
  const res = await fetch(`/api/v1/grievances/${g.grievance_id}/history.html`,
                          { headers: { Authorization: "Bearer " + token() } });
  if (res.status === 401 || res.status === 403) throw Object.assign(new Error("auth"), { status: res.status });
  if (!res.ok) throw new Error(res.statusText);
  $("history-title").textContent = g.title;
  $("history-frame").srcdoc = await res.text();
  $("history").showModal();
}

async function show(unitId) {
  unit = unitId;
  const q = unit ? "unit=" + encodeURIComponent(unit) : "";
  const picked = asOf();
  const atQ = picked ? "at=" + encodeURIComponent(isoWithOffset(picked)) : "";
  if (!levels) levels = await api("/chart/levels");
  const head = await api(`/dashboard/headline?${q}&${atQ}`);
  unit = head.unit_id;
  const at = new Date(head.as_of);  // without a pick, the server's default: the latest activity's, if not now
  shownAt = at;
  const node = await api(`/chart/units/${encodeURIComponent(unit)}`);
  if (!trail.length || trail[trail.length - 1].id !== unit) trail.push({ id: node.id, name: node.name });
  crumbs();
  for (const k of ["resolved", "replied", "open", "overdue"]) $("h-" + k).textContent = head[k].toLocaleString();
  // Asked beside the rest, not before it: the first answer may have a long log to catch up on.
  showResidentLoop(unit, at).catch(failed);

  const fromDay = day(at, 89), toDay = day(at, 0);
  const [rates, counts, days, funnel, queue] = await Promise.all([
    // The window is the server's rule (the twelve months before the as-of), as the CLI and the demo show it.
    api(`/dashboard/rates?unit=${encodeURIComponent(unit)}&${atQ}`),
    api(`/dashboard/counts?unit=${encodeURIComponent(unit)}`),
    api(`/dashboard/daily?unit=${encodeURIComponent(unit)}&from=${fromDay}&to=${toDay}`),
    api(`/dashboard/funnel?unit=${encodeURIComponent(unit)}`),
    api(`/dashboard/overdue?unit=${encodeURIComponent(unit)}&at=${encodeURIComponent(isoWithOffset(at))}&limit=20`),
  ]);
  $("window").textContent = `${T[lang].asOf} ${shownTime(at)} · ${T[lang].window} ${rates[0].from_month} – ` +
    `${rates[0].to_month} · ${T[lang].days} ${fromDay} – ${toDay}`;
  const key = (r) => r.unit_id + "/" + r.scope;
  const openOf = Object.fromEntries(counts.map((c) => [key(c), c.waiting + c.claimed]));
  // The units directly below, then what waits or was settled at the unit itself: the rows add up to the headline.
  const below = rates.filter((r) => r.unit_id !== unit || r.scope === "unit_itself");
  const shown = below.length ? below : rates;
  const nameOf = (r) => (r.scope === "unit_itself" ? r.name + T[lang].itself : r.name);
  const names = shown.map(nameOf);
  Plotly.react("rates-chart", ["response_rate", "resolution_rate", "satisfaction_rate"].map((k, i) => ({
    type: "bar", name: T[lang][["response", "resolution", "satisfaction"][i]], x: names,
    y: shown.map((r) => r[k]), customdata: shown.map((r) => (r.scope === "unit_itself" ? null : r.unit_id)),
  })), { barmode: "group", yaxis: { tickformat: ".0%", range: [0, 1] }, margin: { t: 10, b: 80, l: 45, r: 10 },
         legend: { orientation: "h", y: 1.12 } },
  { displaylogo: false, responsive: true });
  if (!ratesClickable) {  // Plotly keeps listeners across redraws: one is enough
    $("rates-chart").on("plotly_click", (ev) => { if (ev.points[0].customdata) drill(ev.points[0].customdata); });
    ratesClickable = true;
  }

  const body = $("units").tBodies[0];
  body.replaceChildren(...shown.map((r) => {
    const tr = document.createElement("tr");
    const a = Object.assign(document.createElement("a"), { textContent: nameOf(r) });
    a.dataset.unit = r.unit_id;
    a.dataset.scope = r.scope;
    if (r.scope !== "unit_itself" && r.unit_id !== unit && r.level !== "member_household") {
      a.href = "#";
      a.onclick = (ev) => { ev.preventDefault(); drill(r.unit_id); };
    }
    if (r.scope === "unit_itself") tr.className = "itself";
    const cells = [a, pct(r.response_rate), pct(r.resolution_rate), pct(r.satisfaction_rate),
                   (openOf[key(r)] ?? 0).toLocaleString()];
    tr.append(...cells.map(cell));
    return tr;
  }));

  // Days without activity are not stored: they are zeros, not gaps to draw across.
  const byDay = Object.fromEntries(days.map((d) => [d.day, d]));
  const span = Array.from({ length: 90 }, (_, i) => day(at, 89 - i));
  const of = (d, f) => (byDay[d] ? f(byDay[d]) : 0);
  const reportedY = span.map((d) => of(d, (x) => x.reported));
  const closedY = span.map((d) => of(d, (x) => x.resolved + x.replied));
  Plotly.react("daily-chart", [
    { type: "scatter", mode: "lines", name: T[lang].reported, x: span, y: reportedY },
    { type: "scatter", mode: "lines", name: T[lang].closed, x: span, y: closedY },
  ], { margin: { t: 10, l: 40, r: 10 }, yaxis: countAxis([...reportedY, ...closedY]),
       legend: { orientation: "h", y: 1.12 } }, { displaylogo: false, responsive: true });
  const closures = funnel.map((f) => f.resolved + f.replied);
  Plotly.react("funnel-chart", [{
    type: "funnel", y: funnel.map((f) => levelName(f.level)), x: closures, textinfo: "value",
  }], { margin: { t: 10, l: 10, r: 10 }, yaxis: { automargin: true } }, { displaylogo: false, responsive: true });
  const reopened = funnel.reduce((n, f) => n + f.reopened_resolved + f.reopened_replied, 0);
  $("funnel-note").textContent = `${T[lang].closures}: ${closures.reduce((a, b) => a + b, 0).toLocaleString()} − ` +
    `${reopened.toLocaleString()} = ${T[lang].settledNow} ${(head.resolved + head.replied).toLocaleString()}`;

  $("queue").tBodies[0].replaceChildren(...queue.map((g) => {
    const tr = document.createElement("tr");
    const due = g.due_at ? shownTime(new Date(g.due_at)) : "";
    const a = Object.assign(document.createElement("a"), { textContent: g.title, href: "#", title: T[lang].history });
    a.dataset.grievance = g.grievance_id;
    a.onclick = (ev) => { ev.preventDefault(); openHistory(g).catch(failed); };
    tr.append(cell(a), cell(g.unit_name), cell(T[lang].statuses[g.status] || g.status), cell(due));
    return tr;
  }));
  $("refreshed").textContent = shownTime(new Date());
  showAsOf();
  const url = new URL(location.href);
  url.searchParams.set("unit", unit);
  history.replaceState(null, "", url);
}

async function showResidentLoop(unitId, at) {
  // Satisfaction counts only what residents said, and beside it how much of it they gave themselves (their
  // receipt's page) rather than on the office's callback (回访).
  // As of the page's time, as the overdue queue is: its days waited are counted to then.
  const loop = await api(`/callbacks?unit=${encodeURIComponent(unitId)}&limit=20&at=${encodeURIComponent(isoWithOffset(at))}`);
  $("h-satisfaction").textContent = pct(loop.ratings.satisfaction_rate);
  $("h-resident-share").textContent = `${T[lang].byResidents} ${pct(loop.ratings.resident_share)} · ` +
    `${loop.ratings.rated.toLocaleString()} ${T[lang].ofRatings}`;
  // The office's callback queue (回访): closures nobody rated within the configured days, oldest first.
  $("callbacks").tBodies[0].replaceChildren(...loop.closures.map((c) => {
    const tr = document.createElement("tr");
    const a = Object.assign(document.createElement("a"), { textContent: c.grievance_id.slice(0, 8), href: "#",
                                                           title: T[lang].history });
    a.onclick = (ev) => { ev.preventDefault(); openHistory({ ...c, title: c.grievance_id }).catch(failed); };
    tr.append(cell(a), cell(c.unit_name), cell(T[lang].statuses[c.status] || c.status),
              cell(shownTime(new Date(c.closed_at))), cell(`${c.days_waiting} ${T[lang].waited}`));
    return tr;
  }));
}

function drill(unitId) { show(unitId).catch(failed); }

function failed(err) {
  if (err.status === 401 || err.status === 403) {
    $("board").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = !token();
    $("signin-error").textContent = T[lang].badToken;
  } else {
    console.error(err);
  }
}

function start() {
  translate();
  // ?at= as the API takes it; a "+" left unencoded in the address arrives as a space.
  const atParam = params.get("at") && new Date(params.get("at").trim().replace(" ", "+"));
  if (atParam && !isNaN(atParam)) $("at").value = wallText(atParam);
  if (!token()) { $("signin").hidden = false; $("signout").hidden = true; return; }
  $("signin").hidden = true;
  $("signout").hidden = false;
  $("board").hidden = false;
  show(unit).catch(failed);
}

$("signin").onsubmit = (ev) => {
  ev.preventDefault();
  localStorage.setItem("grievance-token", $("token").value.trim());
  trail = [];
  start();
};
$("signout").onclick = () => { localStorage.removeItem("grievance-token"); location.reload(); };
$("lang").onclick = () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("lang", lang);
  translate();
  if (token()) show(unit).catch(failed);
};
$("at").onchange = () => { if (atIsValid()) { showAsOf(); show(unit).catch(failed); } };
$("at").oninput = () => { if (atIsValid()) showAsOf(); };
$("history-close").onclick = () => $("history").close();
setInterval(() => { if (token() && !document.hidden) show(unit).catch(failed); }, REFRESH_MS);
start();
