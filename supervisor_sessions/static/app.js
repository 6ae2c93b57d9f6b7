// The dashboard: sessions, one session (live log, events, diff, files, actions), spawn, machine.
// Everything a worker or a user wrote is put in the page as text (textContent), never as markup.
"use strict";

const PAGE_SIZE = 50;
const MAX_SAMPLED = 20;   // live sessions of a page whose CPU and memory the table shows
const FINAL = ["completed", "failed", "stopped", "interrupted"];
const STATUSES = ["queued", "starting", "preparing", "running"].concat(FINAL);
const RECORD_EVENTS = ["created", "state", "removed"];   // SSE event names of the change feed
const AGENT_EVENTS = ["message", "tool_call", "tool_result", "usage", "agent_state", "error", "result",
                      "approval_request", "approval_decision"];
let csrf = null;          // kept in memory only: a reload asks /ui/session for it again
let leaving = [];         // what the current view must close when another one opens

// ---- small helpers ----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const headers = {"Accept": "application/json"};
  if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {method, headers, credentials: "same-origin",
                                      body: body === undefined ? undefined : JSON.stringify(body)});
  if (response.status === 401 && !path.startsWith("/ui/")) { showLogin(); throw new Error("signed out"); }
  const type = response.headers.get("Content-Type") || "";
  const answer = type.startsWith("application/json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(answer && answer.message ? answer.message : "HTTP " + response.status);
  return answer;
}

function age(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function labelsText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => k + "=" + v).join(" ");
}

function usageText(usage) {
  if (!usage) return "";
  const tokens = (usage.inputTokens || 0) + (usage.outputTokens || 0);
  return tokens + " tok" + (usage.costUsd !== undefined ? " $" + Number(usage.costUsd).toFixed(4) : "");
}

function resourcesText(resources) {
  return (resources.cpuPercent || 0).toFixed(1) + "% / " + bytes(resources.rss) +
    (resources.gpuMemory ? " / " + bytes(resources.gpuMemory) : "");
}

function setView(...nodes) {
  for (const close of leaving) close();
  leaving = [];
  document.getElementById("view").replaceChildren(...nodes);
}

function stream(url, handlers) {   // an EventSource closed when the view changes
  const source = new EventSource(url);
  for (const [name, handler] of Object.entries(handlers)) source.addEventListener(name, handler);
  leaving.push(() => source.close());
  return source;
}

function every(ms, action) {
  const timer = setInterval(action, ms);
  leaving.push(() => clearInterval(timer));
}

// ---- ANSI colours in logs: SGR codes become classes, everything else is text -------------------

const SGR = /\x1b\[([0-9;]*)m/g;

function ansiSpans(text, state) {
  const out = [];
  let last = 0;
  const push = (chunk) => {
    if (!chunk) return;
    const classes = [state.fg, state.bold ? "b" : ""].filter(Boolean).join(" ");
    out.push(classes ? el("span", {class: classes}, chunk) : document.createTextNode(chunk));
  };
  for (const match of text.matchAll(SGR)) {
    push(text.slice(last, match.index));
    for (const code of (match[1] || "0").split(";").map(Number)) {
      if (code === 0) { state.fg = ""; state.bold = false; }
      else if (code === 1) state.bold = true;
      else if (code === 22) state.bold = false;
      else if (code === 39) state.fg = "";
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) state.fg = "c" + code;
    }
    last = match.index + match[0].length;
  }
  push(text.slice(last).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""));
  return out;
}

// ---- sign in ------------------------------------------------------------------------------------

function showLogin() {
  csrf = null;
  document.getElementById("nav").hidden = true;
  const form = document.getElementById("login-template").content.firstElementChild.cloneNode(true);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.querySelector("#key");
    try {
      const answer = await api("POST", "/ui/login", {key: input.value});
      input.value = "";
      signedIn(answer.csrf);
    } catch (error) {
      form.querySelector("#login-error").textContent = error.message;
    }
  });
  setView(form);
}

function signedIn(token) {
  csrf = token;
  document.getElementById("nav").hidden = false;
  route();
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/ui/logout"); } finally { showLogin(); }
});

// ---- sessions -----------------------------------------------------------------------------------

async function sessionsView(params) {
  const status = params.get("status") || "";
  const label = params.get("label") || "";
  const offset = Number(params.get("offset") || 0);
  const select = el("select", {id: "filter-status"}, el("option", {value: ""}, "any status"),
                    ...STATUSES.map((s) => el("option", {value: s}, s)));
  select.value = status;
  const labelInput = el("input", {id: "filter-label", placeholder: "label name=value", value: label});
  const go = (newOffset) => {
    const q = new URLSearchParams();
    if (select.value) q.set("status", select.value);
    if (labelInput.value.trim()) q.set("label", labelInput.value.trim());
    if (newOffset) q.set("offset", String(newOffset));
    location.hash = "#/?" + q.toString();
  };
  select.addEventListener("change", () => go(0));
  labelInput.addEventListener("change", () => go(0));
  const body = el("tbody", {id: "sessions-body"});
  const count = el("span", {id: "sessions-count"});
  const prev = el("button", {type: "button", id: "prev", onclick: () => go(Math.max(0, offset - PAGE_SIZE))}, "‹ newer");
  const next = el("button", {type: "button", id: "next", onclick: () => go(offset + PAGE_SIZE)}, "older ›");
  setView(el("section", {},
    el("div", {class: "toolbar"}, select, labelInput, count, prev, next),
    el("table", {id: "sessions"},
      el("thead", {}, el("tr", {}, ...["session", "name", "status", "agent", "runtime", "labels", "age", "duration",
                                       "cpu / rss / gpu", "usage", "task"].map((h) => el("th", {}, h)))),
      body)));

  async function refresh() {
    const q = new URLSearchParams({limit: String(PAGE_SIZE), offset: String(offset)});
    if (status) q.set("status", status);
    if (label) q.set("label", label);
    const page = await api("GET", "/v1/sessions?" + q.toString());
    count.textContent = page.count + " sessions";
    prev.disabled = offset === 0;
    next.disabled = offset + PAGE_SIZE >= page.count;
    body.replaceChildren(...page.sessions.map((s) => el("tr", {"data-id": s.sessionId, class: "status-" + s.status},
      el("td", {}, el("a", {href: "#/session/" + s.sessionId}, s.sessionId.slice(0, 8))),
      el("td", {}, s.name || ""),
      el("td", {class: "status"}, s.status),
      el("td", {}, s.agentState || ""),
      el("td", {}, s.runtime),
      el("td", {}, labelsText(s.labels)),
      el("td", {class: "age", "data-since": String(s.createdAt)}),
      el("td", {class: "duration", "data-start": String(s.startTime || ""), "data-end": String(s.endTime || "")}),
      el("td", {class: "resources"}),
      el("td", {}, usageText(s.usage)),
      el("td", {class: "task"}, (s.task || "").slice(0, 120)))));
    tick();
    sample();
  }
  async function sample() {   // what the live sessions of this page use (their whole process trees)
    const live = [...body.querySelectorAll("tr.status-running, tr.status-preparing")].slice(0, MAX_SAMPLED);
    await Promise.all(live.map(async (row) => {
      const r = await api("GET", "/v1/sessions/" + row.dataset.id + "?tail=0").catch(() => null);
      if (r && r.resources) {
        row.querySelector("td.resources").textContent = resourcesText(r.resources);
      }
    }));
  }
  function tick() {   // ages and durations move on between the feed's changes
    const now = Date.now();
    for (const cell of body.querySelectorAll("td.age")) cell.textContent = age(now - Number(cell.dataset.since));
    for (const cell of body.querySelectorAll("td.duration")) {
      if (cell.dataset.start) cell.textContent = age(Number(cell.dataset.end || now) - Number(cell.dataset.start));
    }
  }
  await refresh();
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 250); };
  leaving.push(() => clearTimeout(pending));
  const start = await api("GET", "/v1/events?since=2147483647");   // the feed's next seq: follow from now on
  stream("/v1/events?type=created,state,removed&since=" + start.nextSeq,
         Object.fromEntries(RECORD_EVENTS.map((name) => [name, soon])));
  every(1000, tick);
  every(5000, sample);
}

// ---- one session --------------------------------------------------------------------------------

async function sessionView(sid) {
  const record = await api("GET", "/v1/sessions/" + encodeURIComponent(sid) + "?tail=0");
  const fields = el("dl", {id: "record"});
  const status = el("span", {id: "status", class: "status"});
  const log = el("pre", {id: "log", class: "log"});
  const events = el("ol", {id: "events", class: "events"});
  const extras = el("div", {id: "extras"});
  const stopButton = el("button", {type: "button", id: "stop", onclick: () => act("DELETE", "")}, "Stop");
  const actions = el("div", {class: "toolbar"}, stopButton,
    el("button", {type: "button", id: "remove", onclick: () => act("DELETE", "?purge=true", true)}, "Remove"));
  const message = el("p", {class: "error", id: "action-error"});
  setView(el("section", {},
    el("h1", {}, "Session ", el("code", {}, sid), " ", status),
    actions, message, fields, extras,
    el("h2", {}, "Log"), log,
    el("h2", {}, "Events"), events));

  async function act(method, query, leave) {
    try {
      await api(method, "/v1/sessions/" + sid + query);
      if (leave) location.hash = "#/"; else show(await api("GET", "/v1/sessions/" + sid + "?tail=0"));
    } catch (error) { message.textContent = error.message; }
  }

  function show(r) {   // (an answer that comes after the view was left changes nothing on screen)
    status.textContent = r.status;
    status.className = "status status-" + r.status;
    const rows = [["name", r.name], ["runtime", r.runtime], ["agent", r.agent], ["provider", r.provider],
                  ["cause", r.cause], ["reason", r.reason], ["exit code", r.exitCode], ["agent state", r.agentState],
                  ["usage", usageText(r.usage)], ["labels", labelsText(r.labels)], ["age", age(Date.now() - r.createdAt)],
                  ["duration", age(r.duration)], ["task", r.task]];
    if (r.resources) rows.push(["cpu / rss / gpu", resourcesText(r.resources)]);
    if (r.changes) rows.push(["changes", r.changes.files + " files +" + r.changes.insertions + " -" + r.changes.deletions +
                                         ", " + r.changes.commits + " commits"]);
    fields.replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {"data-field": k}, String(v))]));
    stopButton.disabled = FINAL.includes(r.status);
  }
  show(record);

  const colours = {fg: "", bold: false};
  stream("/v1/sessions/" + sid + "/log?follow=true", {
    message: (event) => { log.append(...ansiSpans(event.data + "\n", colours)); log.scrollTop = log.scrollHeight; },
    end: async (event) => {   // the log is whole: no reconnection after it
      event.target.close();
      show(await api("GET", "/v1/sessions/" + sid + "?tail=0"));
    },
  });
  const showEvent = async (event) => {
    const e = JSON.parse(event.data);
    const details = ["status", "cause", "reason", "state", "role", "tool", "input", "text", "decision"]
      .filter((k) => e[k] !== undefined && e[k] !== null).map((k) => k + "=" + String(e[k]).slice(0, 200)).join(" ");
    events.append(el("li", {}, el("code", {}, e.type), " ", details));
    if (e.type === "state") show(await api("GET", "/v1/sessions/" + sid + "?tail=0"));
  };
  stream("/v1/sessions/" + sid + "/events?since=0",
         Object.fromEntries(RECORD_EVENTS.concat(AGENT_EVENTS).map((name) => [name, showEvent])));
  if (!FINAL.includes(record.status)) every(3000, async () => show(await api("GET", "/v1/sessions/" + sid + "?tail=0")));

  if (record.interactive) extras.append(messageForm(sid));
  if (record.approvals === "ask") extras.append(await approvalsPanel(sid));
  if (record.workspace && FINAL.includes(record.status)) {
    try {
      extras.append(el("h2", {}, "Diff"), el("pre", {id: "diff", class: "log"}, await api("GET", "/v1/sessions/" + sid + "/diff")));
    } catch (error) { extras.append(el("p", {}, "No diff: " + error.message)); }
  }
  try {
    const listing = await api("GET", "/v1/sessions/" + sid + "/files");
    extras.append(el("h2", {}, "Files"), el("ul", {id: "files"}, ...listing.entries.map((f) =>
      el("li", {}, f.name, " ", el("small", {}, f.type === "file" ? bytes(f.size) : f.type)))));
  } catch (error) { /* a session directory that is gone has no files to show */ }
}

function messageForm(sid) {
  const text = el("textarea", {id: "message-text", rows: "2"});
  const said = el("p", {class: "error"});
  return el("form", {id: "message", class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try { await api("POST", "/v1/sessions/" + sid + "/messages", {text: text.value}); text.value = ""; said.textContent = "sent"; }
    catch (error) { said.textContent = error.message; }
  }}, el("label", {}, "Next message ", text), el("button", {type: "submit"}, "Send"), said);
}

async function approvalsPanel(sid) {
  const list = el("ul", {id: "approvals"});
  async function refresh() {
    const pending = (await api("GET", "/v1/sessions/" + sid + "/approvals")).approvals;
    list.replaceChildren(...pending.map((a) => el("li", {}, el("code", {}, a.tool), " ", a.input, " ",
      ...["allow", "deny"].map((decision) => el("button", {type: "button", onclick: async () => {
        await api("POST", "/v1/sessions/" + sid + "/approvals/" + encodeURIComponent(a.requestId), {decision});
        refresh();
      }}, decision)))));
  }
  await refresh();
  every(2000, refresh);
  return el("div", {}, el("h2", {}, "Approvals"), list);
}

// ---- spawn --------------------------------------------------------------------------------------

async function spawnView() {
  const runtimes = (await api("GET", "/v1/runtimes")).runtimes;
  const field = (label, input) => el("label", {}, label + " ", input);
  const runtime = el("select", {name: "runtime", id: "spawn-runtime"},
                     ...runtimes.map((r) => el("option", {value: r.runtime}, r.runtime + (r.installed ? "" : " (not installed)"))));
  runtime.value = runtimes.some((r) => r.runtime === "shell") ? "shell" : runtimes[0].runtime;
  const inputs = {
    agent: el("input", {name: "agent", id: "spawn-agent", value: "coder", required: ""}),
    provider: el("input", {name: "provider", id: "spawn-provider", value: "anthropic", required: ""}),
    task: el("textarea", {name: "task", id: "spawn-task", rows: "4", required: ""}),
    name: el("input", {name: "name", id: "spawn-name"}),
    memoryMB: el("input", {name: "memoryMB", id: "spawn-memory", type: "number", min: "16"}),
    cpus: el("input", {name: "cpus", id: "spawn-cpus", type: "number", min: "0.01", step: "0.01"}),
    labels: el("input", {name: "labels", id: "spawn-labels", placeholder: "team=infra, ticket=42"}),
  };
  const said = el("p", {class: "error", id: "spawn-error"});
  const form = el("form", {id: "spawn", class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const spec = {runtime: runtime.value, agent: inputs.agent.value, provider: inputs.provider.value, task: inputs.task.value};
    if (inputs.name.value) spec.name = inputs.name.value;
    const limits = {};
    if (inputs.memoryMB.value) limits.memoryMB = Number(inputs.memoryMB.value);
    if (inputs.cpus.value) limits.cpus = Number(inputs.cpus.value);
    if (Object.keys(limits).length) spec.limits = limits;
    const labels = {};
    for (const pair of inputs.labels.value.split(",").map((p) => p.trim()).filter(Boolean)) {
      const at = pair.indexOf("=");
      labels[pair.slice(0, at)] = pair.slice(at + 1);
    }
    if (Object.keys(labels).length) spec.labels = labels;
    try {
      const made = await api("POST", "/v1/sessions", spec);
      location.hash = "#/session/" + made.sessionId;
    } catch (error) { said.textContent = error.message; }
  }},
    el("h1", {}, "Spawn a session"),
    field("runtime", runtime), field("agent", inputs.agent), field("provider", inputs.provider),
    field("task", inputs.task), field("name", inputs.name), field("memory (MB)", inputs.memoryMB),
    field("cpus", inputs.cpus), field("labels", inputs.labels),
    el("button", {type: "submit", id: "spawn-button"}, "Spawn"), said);
  setView(form);
}

// ---- machine ------------------------------------------------------------------------------------

function chart(title, id) {
  const canvas = el("canvas", {width: "320", height: "80", id});
  const value = el("span", {class: "value"});
  const points = [];
  return {
    node: el("figure", {class: "chart"}, el("figcaption", {}, title + " ", value), canvas),
    add(percent, text) {
      points.push(percent);
      if (points.length > 60) points.shift();
      value.textContent = text;
      const g = canvas.getContext("2d");
      g.clearRect(0, 0, canvas.width, canvas.height);
      g.strokeStyle = "#2b6cb0";
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => {
        const x = i * canvas.width / 59, y = canvas.height - 2 - (canvas.height - 4) * Math.min(100, p) / 100;
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      });
      g.stroke();
    },
  };
}

async function machineView() {
  const cpu = chart("CPU", "chart-cpu"), memory = chart("Memory", "chart-memory"), disk = chart("Disk", "chart-disk");
  const gpus = el("div", {id: "gpus"});
  const workers = el("p", {id: "workers"});
  const gpuCharts = {};
  setView(el("section", {id: "machine"}, el("h1", {}, "Machine"), workers,
                el("div", {class: "charts"}, cpu.node, memory.node, disk.node), gpus));
  async function sample() {
    const s = await api("GET", "/v1/status");
    const sys = s.system;
    cpu.add(sys.cpu.percent, sys.cpu.percent.toFixed(0) + "% of " + sys.cpu.count);
    memory.add(sys.memory.percent, bytes(sys.memory.used) + " of " + bytes(sys.memory.total));
    disk.add(sys.disk.percent, bytes(sys.disk.used) + " of " + bytes(sys.disk.total));
    workers.textContent = s.workers.active + " active, " + s.workers.queued + " queued, " + s.workers.total +
      " sessions; workspaces " + bytes(s.workspaces ? s.workspaces.diskBytes : 0);
    if (!s.gpu.available) { gpus.textContent = "GPU: " + (s.gpu.reason || "none"); return; }
    for (const gpu of s.gpu.gpus) {
      if (!gpuCharts[gpu.index]) {
        gpuCharts[gpu.index] = [chart("GPU " + gpu.index + " " + gpu.name, "chart-gpu-" + gpu.index),
                                chart("GPU " + gpu.index + " memory", "chart-gpumem-" + gpu.index)];
        gpus.append(...gpuCharts[gpu.index].map((c) => c.node));
      }
      const [util, mem] = gpuCharts[gpu.index];
      util.add(gpu.utilization || 0, (gpu.utilization || 0) + "%");
      mem.add(100 * (gpu.memoryUsed || 0) / (gpu.memoryTotal || 1), bytes(gpu.memoryUsed) + " of " + bytes(gpu.memoryTotal));
    }
  }
  await sample();
  every(2000, sample);
}

// ---- routing ------------------------------------------------------------------------------------

let routing = Promise.resolve();

function route() {   // one view at a time, in the order asked: a slow view never covers a later one
  routing = routing.then(showRoute);
  return routing;
}

async function showRoute() {
  if (!csrf) return;
  const hash = location.hash.slice(1) || "/";
  const [path, query] = hash.split("?");
  try {
    if (path.startsWith("/session/")) await sessionView(decodeURIComponent(path.slice(9)));
    else if (path === "/spawn") await spawnView();
    else if (path === "/machine") await machineView();
    else await sessionsView(new URLSearchParams(query || ""));
  } catch (error) {
    if (csrf) setView(el("p", {class: "error", id: "view-error"}, error.message));
  }
}

window.addEventListener("hashchange", route);
api("GET", "/ui/session").then((answer) => answer.signedIn ? signedIn(answer.csrf) : showLogin(), showLogin);
