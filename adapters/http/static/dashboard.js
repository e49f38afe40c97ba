// The supervisors' dashboard: reads the API with the user's token, draws with Plotly (served from the
// plotly package, never a CDN), drills down the chart, and refreshes by itself.
"use strict";

const T = {
  zh: { title: "党建服务链条 · 督办看板", asOf: "截至", signOut: "退出", token: "API 令牌", signIn: "进入",
        resolved: "已解决", replied: "已答复", open: "办理中", overdue: "超期", rates: "三率（按单位）",
        unit: "单位", response: "响应率", resolution: "解决率", satisfaction: "满意率",
        daily: "每日上报与办结", funnel: "七级链条办结分布", queue: "超期队列", title_: "诉求", status: "状态",
        due: "期限", refreshed: "更新于", reported: "上报", closed: "办结", badToken: "令牌无效或无权查看",
        levels: { member_household: "党员中心户", building_group: "楼栋党小组", grid_branch: "网格党支部",
                  community: "社区党组织", joint_committee: "联合党委", street_committee: "街道党工委",
                  leading_group: "领导小组" },
        statuses: { waiting: "待认领", claimed: "已认领", resolved: "已解决", replied: "已答复" } },
  en: { title: "Service chain · Supervisors' dashboard", asOf: "As of", signOut: "Sign out", token: "API token",
        signIn: "Open", resolved: "Resolved", replied: "Replied", open: "Open", overdue: "Overdue",
        rates: "The three rates, by unit", unit: "Unit", response: "Response", resolution: "Resolution",
        satisfaction: "Satisfaction", daily: "Reports and closures per day", funnel: "Settled at each of the seven steps",
        queue: "Overdue queue", title_: "Grievance", status: "Status", due: "Due", refreshed: "Refreshed",
        reported: "reported", closed: "closed", badToken: "The token is not valid or may not see this",
        levels: { member_household: "Member household", building_group: "Building group", grid_branch: "Grid branch",
                  community: "Community", joint_committee: "Joint committee", street_committee: "Street committee",
                  leading_group: "Leading group" },
        statuses: { waiting: "waiting", claimed: "claimed", resolved: "resolved", replied: "replied" } },
};
const REFRESH_MS = 30000;
const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("lang") || "zh";
let unit = params.get("unit");
let trail = [];  // [{id, name}] from the reader's own unit down to the one shown
let ratesClickable = false;

const $ = (id) => document.getElementById(id);
const pct = (r) => (r === null || r === undefined ? "—" : (r * 100).toFixed(1) + "%");
const token = () => localStorage.getItem("grievance-token");

function asOf() {  // the input shows China Standard Time, whatever the browser's own zone
  const v = $("at").value;
  return v ? new Date(v + ":00+08:00") : new Date();
}
function isoWithOffset(d) {  // China Standard Time, as the projections count days
  const cst = new Date(d.getTime() + 8 * 3600e3);
  return cst.toISOString().slice(0, 19) + "+08:00";
}
function month(d, back) {
  const cst = new Date(d.getTime() + 8 * 3600e3);
  const m = new Date(Date.UTC(cst.getUTCFullYear(), cst.getUTCMonth() - back, 1));
  return m.toISOString().slice(0, 7);
}
function day(d, back) {
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

async function show(unitId) {
  unit = unitId;
  const q = unit ? "unit=" + encodeURIComponent(unit) : "";
  const at = asOf();
  const atQ = "at=" + encodeURIComponent(isoWithOffset(at));
  const head = await api(`/dashboard/headline?${q}&${atQ}`);
  unit = head.unit_id;
  const node = await api(`/chart/units/${encodeURIComponent(unit)}`);
  if (!trail.length || trail[trail.length - 1].id !== unit) trail.push({ id: node.id, name: node.name });
  crumbs();
  for (const k of ["resolved", "replied", "open", "overdue"]) $("h-" + k).textContent = head[k].toLocaleString();

  const [rates, counts, days, funnel, queue] = await Promise.all([
    api(`/dashboard/rates?unit=${encodeURIComponent(unit)}&from=${month(at, 11)}&to=${month(at, 0)}`),
    api(`/dashboard/counts?unit=${encodeURIComponent(unit)}`),
    api(`/dashboard/daily?unit=${encodeURIComponent(unit)}&from=${day(at, 89)}&to=${day(at, 0)}`),
    api(`/dashboard/funnel?unit=${encodeURIComponent(unit)}`),
    api(`/dashboard/overdue?unit=${encodeURIComponent(unit)}&${atQ}&limit=20`),
  ]);
  const openOf = Object.fromEntries(counts.map((c) => [c.unit_id, c.waiting + c.claimed]));
  const below = rates.filter((r) => r.unit_id !== unit);
  const shown = below.length ? below : rates;
  const names = shown.map((r) => r.name);
  Plotly.react("rates-chart", ["response_rate", "resolution_rate", "satisfaction_rate"].map((k, i) => ({
    type: "bar", name: T[lang][["response", "resolution", "satisfaction"][i]], x: names,
    y: shown.map((r) => r[k]), customdata: shown.map((r) => r.unit_id),
  })), { barmode: "group", yaxis: { tickformat: ".0%", range: [0, 1] }, margin: { t: 10, b: 80 } },
  { displaylogo: false, responsive: true });
  if (!ratesClickable) {  // Plotly keeps listeners across redraws: one is enough
    $("rates-chart").on("plotly_click", (ev) => drill(ev.points[0].customdata));
    ratesClickable = true;
  }

  const body = $("units").tBodies[0];
  body.replaceChildren(...shown.map((r) => {
    const tr = document.createElement("tr");
    const a = Object.assign(document.createElement("a"), { textContent: r.name });
    a.dataset.unit = r.unit_id;
    if (r.unit_id !== unit && r.level !== "member_household") a.onclick = () => drill(r.unit_id);
    const cells = [a, pct(r.response_rate), pct(r.resolution_rate), pct(r.satisfaction_rate),
                   (openOf[r.unit_id] ?? 0).toLocaleString()];
    tr.append(...cells.map((c) => { const td = document.createElement("td"); td.append(c); return td; }));
    return tr;
  }));

  // Days without activity are not stored: they are zeros, not gaps to draw across.
  const byDay = Object.fromEntries(days.map((d) => [d.day, d]));
  const span = Array.from({ length: 90 }, (_, i) => day(at, 89 - i));
  const of = (d, f) => (byDay[d] ? f(byDay[d]) : 0);
  Plotly.react("daily-chart", [
    { type: "scatter", mode: "lines", name: T[lang].reported, x: span, y: span.map((d) => of(d, (x) => x.reported)) },
    { type: "scatter", mode: "lines", name: T[lang].closed, x: span,
      y: span.map((d) => of(d, (x) => x.resolved + x.replied)) },
  ], { margin: { t: 10 } }, { displaylogo: false, responsive: true });
  Plotly.react("funnel-chart", [{
    type: "funnel", y: funnel.map((f) => T[lang].levels[f.level] || f.level), x: funnel.map((f) => f.resolved + f.replied),
  }], { margin: { t: 10, l: 120 } }, { displaylogo: false, responsive: true });

  $("queue").tBodies[0].replaceChildren(...queue.map((g) => {
    const tr = document.createElement("tr");
    const due = g.due_at ? isoWithOffset(new Date(g.due_at)).slice(0, 16).replace("T", " ") : "";
    [g.title, g.unit_id, T[lang].statuses[g.status] || g.status, due]
      .forEach((text) => tr.append(Object.assign(document.createElement("td"), { textContent: text })));
    return tr;
  }));
  $("refreshed").textContent = new Date().toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
  const url = new URL(location.href);
  url.searchParams.set("unit", unit);
  history.replaceState(null, "", url);
}

function drill(unitId) { show(unitId).catch(failed); }

function failed(err) {
  if (err.status === 401 || err.status === 403) {
    $("board").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = T[lang].badToken;
  } else {
    console.error(err);
  }
}

function start() {
  translate();
  if (params.get("at")) $("at").value = isoWithOffset(new Date(params.get("at"))).slice(0, 16);
  if (!token()) { $("signin").hidden = false; return; }
  $("signin").hidden = true;
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
$("at").onchange = () => show(unit).catch(failed);
setInterval(() => { if (token() && !document.hidden) show(unit).catch(failed); }, REFRESH_MS);
start();
