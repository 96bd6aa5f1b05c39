// The AOI review page: the selected year's map under its change polygons, review buttons in each
// polygon's popup, and two charts. Data comes from the plugin's JSON API (same origin).
"use strict";

if (typeof L === "undefined" || typeof Chart === "undefined") {
  document.getElementById("message").textContent =
    "Leaflet or Chart.js is missing on the server: run `bash scripts/setup.sh orchestration` (npm ci).";
  document.getElementById("message").className = "error";
  throw new Error("eo-review: browser libraries not installed");
}

const root = document.getElementById("review");
const base = root.dataset.base;
const aoi = encodeURIComponent(root.dataset.aoi);
const form = document.getElementById("filters");
const message = document.getElementById("message");
const reviewer = form.elements.reviewer;
const STATUS_COLORS = { pending: "#e6007e", approved: "#00c853", rejected: "#222222" };
const REVIEWER_KEY = "eo-review.reviewer";

if (!reviewer.readOnly) {
  reviewer.value = localStorage.getItem(REVIEWER_KEY) || "";
  reviewer.addEventListener("change", () => localStorage.setItem(REVIEWER_KEY, reviewer.value.trim()));
}

function say(text, isError = false) {
  message.textContent = text;
  message.className = isError ? "error" : "ok";
}

async function getJSON(path) {
  const response = await fetch(base + path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const map = L.map("map", { attributionControl: false });
let maps = [];
let overlay = null;
let changes = null;

function showMap() {
  const entry = maps.find((m) => String(m.year) === form.elements.year.value);
  if (overlay) overlay.remove();
  if (!entry) return;
  overlay = L.imageOverlay(`${entry.image}?t=${Date.now()}`, entry.bounds, { className: "lc-map" }).addTo(map);
  if (!map._loaded) map.fitBounds(entry.bounds);
}

function popupFor(feature) {
  const p = feature.properties;
  const div = document.createElement("div");
  div.className = "change-popup";
  div.innerHTML = `
    <b>Change ${p.id}</b> (${p.status})<br>
    date <b>${p.change_date}</b>, map ${p.year}<br>
    ${p.from_name} → <i class="swatch" style="background:${p.to_color}"></i> <b>${p.to_name}</b><br>
    ${(p.area_m2 / 1e4).toFixed(2)} ha
    ${p.reviewed_by ? `<br>reviewed by ${p.reviewed_by}, ${p.reviewed_at.slice(0, 16).replace("T", " ")}` : ""}
    <div class="actions">
      <button data-action="approve">Approve</button>
      <button data-action="reject">Reject</button>
      <select name="new_class">${document.getElementById("relabel-options").innerHTML}</select>
      <button data-action="relabel">Relabel</button>
    </div>`;
  div.querySelector("select").value = String(p.new_class ?? p.to_class);
  div.querySelectorAll("button").forEach((button) =>
    button.addEventListener("click", () => review(p.id, button.dataset.action, div.querySelector("select").value))
  );
  return div;
}

async function loadChanges() {
  const query = new URLSearchParams({ year: form.elements.year.value });
  if (form.elements.status.value) query.set("status", form.elements.status.value);
  const data = await getJSON(`/api/aois/${aoi}/changes?${query}`);
  if (changes) changes.remove();
  changes = L.geoJSON(data, {
    style: (f) => ({
      color: STATUS_COLORS[f.properties.status],
      weight: 3,
      fillOpacity: 0.15,
      dashArray: f.properties.status === "rejected" ? "4 4" : null,
      className: `change change-${f.properties.status} change-id-${f.properties.id}`,
    }),
    onEachFeature: (f, layer) => layer.bindPopup(() => popupFor(f)),
  }).addTo(map);
  say(`${data.features.length} change(s) shown`);
}

async function review(changeId, action, newClass) {
  if (!reviewer.value.trim()) {
    reviewer.reportValidity();
    say("enter your name as reviewer first", true);
    return;
  }
  const body = { action, reviewer: reviewer.value.trim() };
  if (action === "relabel") body.new_class = Number(newClass);
  const response = await fetch(`${base}/api/changes/${changeId}/review`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const result = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(`review failed: ${result.detail ? JSON.stringify(result.detail) : response.status}`, true);
    return;
  }
  map.closePopup();
  await refresh();
  const years = result.maps_updated.length ? `maps ${result.maps_updated.join(", ")} updated` : "no map pixels changed";
  say(`change ${changeId} ${result.change.status} by ${result.change.reviewed_by}; ${years}`);
}

const charts = {};
function drawChart(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), config);
}

async function loadStats() {
  const [stats, legend] = [await getJSON(`/api/aois/${aoi}/stats`), [...document.querySelectorAll(".legend li")]];
  const years = Object.keys(stats.areas);
  const classes = legend.map((li) => ({ name: li.textContent.trim(), color: li.querySelector("i").style.background }));
  drawChart("areas", {
    type: "bar",
    data: {
      labels: years,
      datasets: classes.map((c) => ({ label: c.name, backgroundColor: c.color, data: years.map((y) => stats.areas[y][c.name] || 0) })),
    },
    options: { animation: false, plugins: { legend: { display: false } }, scales: { x: { stacked: true }, y: { stacked: true } } },
  });
  drawChart("months", {
    type: "bar",
    data: {
      labels: stats.per_month.map((m) => m.month),
      datasets: Object.entries(STATUS_COLORS).map(([status, color]) => ({
        label: status, backgroundColor: color, data: stats.per_month.map((m) => m[status]),
      })),
    },
    options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, ticks: { precision: 0 } } } },
  });
}

async function refresh() {
  showMap();
  await Promise.all([loadChanges(), loadStats()]);
}

form.addEventListener("change", (event) => {
  const done = (e) => say(e.message, true);
  if (event.target === form.elements.year) refresh().catch(done);
  else if (event.target === form.elements.status) loadChanges().catch(done);
});
form.addEventListener("submit", (event) => event.preventDefault());

getJSON(`/api/aois/${aoi}/maps`)
  .then((found) => {
    maps = found;
    return refresh();
  })
  .catch((e) => say(e.message, true));
