"use strict";
const KEY = "message-dispatcher-api-key";
const $ = (id) => document.getElementById(id);
let waitingForKey = null;

function askForKey() {
  if (!waitingForKey) {
    waitingForKey = new Promise((resolve) => {
      $("key-dialog").style.display = "flex";
      $("api-key").focus();
      $("key-form").onsubmit = (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, $("api-key").value);
        $("key-dialog").style.display = "none";
        waitingForKey = null;
        resolve();
      };
    });
  }
  return waitingForKey;
}

async function api(path, method = "GET") {
  for (;;) {
    const headers = {};
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch(path, { method, headers });
    if (response.status === 401) { await askForKey(); continue; }
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || response.statusText);
    return body;
  }
}

const masked = (phone) => "•••" + phone.slice(-4);
const when = (time) => time ? new Date(time).toLocaleTimeString() : "—";
function ago(time) {
  if (!time) return "empty";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(time)) / 1000));
  return seconds < 120 ? seconds + " s" : Math.round(seconds / 60) + " min";
}
function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}
function fill(table, rows, render) {
  const body = $(table).tBodies[0];
  body.replaceChildren(...rows.map((row) => { const tr = document.createElement("tr"); tr.append(...render(row)); return tr; }));
  if (!rows.length) { const tr = document.createElement("tr"); const td = cell("none", "empty"); td.colSpan = 4; tr.append(td); body.append(tr); }
}

function showStatus(status) {
  const badge = $("running");
  badge.textContent = status.running ? "running" : "stopped";
  badge.className = "badge " + (status.running ? "running" : "stopped");
  $("start").disabled = status.running;
  $("stop").disabled = !status.running;
  $("scope").textContent = status.scope;
  $("pace").textContent = status.batch_size + " every " + (status.interval_ms / 1000) + " s";
  $("last-tick").textContent = when(status.last_tick_at);
  $("next-tick").textContent = when(status.next_tick_at);
  $("instances").textContent = (status.instances || []).map((i) => i.instance_id).join(", ") || "—";
  $("providers").textContent = (status.providers || [])
    .map((p) => p.name + ": " + p.breaker.replace("_", "-") + (p.max_per_second ? ", " + p.max_per_second + "/s" : ""))
    .join("; ") || "—";
  for (const name of ["pending", "sending", "sent", "failed", "delivered", "undelivered"]) {
    $("count-" + name).textContent = status.counts ? status.counts[name] : "?";
  }
  $("count-dead-webhooks").textContent = status.webhooks ? status.webhooks.dead : "?";
  $("count-scheduled").textContent = status.scheduled ?? "?";
  $("count-expired").textContent = status.expired ?? "?";
  $("queue-age").textContent = ago(status.oldest_pending_at);
}

function showActivity(minutes) {
  const now = Math.floor(Date.now() / 60000);
  const series = { sent: new Array(60).fill(0), retried: new Array(60).fill(0), failed: new Array(60).fill(0) };
  for (const m of minutes) {
    const slot = 59 - (now - Math.floor(new Date(m.minute) / 60000));
    if (slot >= 0 && slot < 60) for (const k in series) series[k][slot] = m[k];
  }
  const top = Math.max(1, ...series.sent, ...series.retried, ...series.failed);
  const svg = $("chart");
  const lines = Object.entries(series).map(([name, values]) => {
    const points = values.map((v, i) => (i * 600 / 59).toFixed(1) + "," + (155 - v / top * 145).toFixed(1)).join(" ");
    return `<polyline points="${points}" fill="none" stroke="var(--${name})" stroke-width="2" vector-effect="non-scaling-stroke"/>`;
  });
  svg.innerHTML = `<line x1="0" y1="155" x2="600" y2="155" stroke="var(--line)"/>` + lines.join("") +
    `<text x="4" y="14" font-size="12" fill="var(--muted)">${top}/min</text>`;
}

async function refresh() {
  try {
    const [status, activity, sent, failed] = await Promise.all([
      api("/api/messaging/status"), api("/api/messaging/activity"),
      api("/api/messages/sent?limit=10"), api("/api/messages?status=failed&limit=10"),
    ]);
    showStatus(status);
    showActivity(activity.minutes);
    fill("sent-table", sent.items, (m) => [cell(m.id), cell(masked(m.phone_number), "mono phone"), cell("P" + m.priority + " · " + m.segments + " seg. " + m.encoding, "segments"), cell(m.message_id, "mono"), cell(when(m.sent_at))]);
    fill("failed-table", failed.items, (m) => {
      const button = document.createElement("button");
      button.textContent = "Retry";
      button.className = "retry";
      button.dataset.id = m.id;
      button.onclick = () => act(`/api/messages/${m.id}/retry`);
      const td = document.createElement("td");
      td.append(button);
      return [cell(m.id), cell(masked(m.phone_number), "mono phone"), cell(m.last_error || ""), td];
    });
    $("error").textContent = "";
  } catch (error) {
    $("error").textContent = "Could not refresh: " + error.message;
  }
}

async function act(path) {
  try { await api(path, "POST"); } catch (error) { $("error").textContent = error.message; }
  await refresh();
}

$("start").onclick = () => act("/api/messaging/start");
$("stop").onclick = () => act("/api/messaging/stop");
refresh();
setInterval(refresh, 3000);
