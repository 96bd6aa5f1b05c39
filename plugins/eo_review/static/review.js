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
const csrf = root.dataset.csrf;
const canReview = root.dataset.canReview === "yes";
const form = document.getElementById("filters");
const message = document.getElementById("message");
const STATUS_COLORS = { pending: "#e6007e", approved: "#00c853", rejected: "#222222" };

function say(text, isError = false) {
  message.textContent = text;
  message.className = isError ? "error" : "ok";
}

async function getJSON(path) {
  const response = await fetch(base + path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

const map = L.map("map", { attributionControl: false, maxZoom: Number(root.dataset.maxZoom) });
let maps = [];
let tiles = null;
let changes = null;

function showMap() {
  const entry = maps.find((m) => String(m.year) === form.elements.year.value);
  if (tiles) tiles.remove();
  if (!entry) return;
  // Tiles cut from the COG's overviews; the URL carries the COG's version, so a review shows at once.
  tiles = L.tileLayer(entry.tiles, { tileSize: 256, maxZoom: Number(root.dataset.maxZoom), className: "lc-map" });
  tiles.addTo(map);
  if (!map._loaded) map.fitBounds(entry.bounds);
}

// Builds DOM nodes with text only: nothing from the server is ever parsed as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function popupFor(feature) {
  const p = feature.properties;
  const swatch = el("i", { class: "swatch" });
  swatch.style.background = /^#[0-9a-fA-F]{6}$/.test(p.to_color) ? p.to_color : "#000000";
  const div = el(
    "div",
    { class: "change-popup" },
    el("b", {}, `Change ${p.id}`), ` (${p.status})`, el("br"),
    "date ", el("b", {}, p.change_date), `, map ${p.year}`, el("br"),
    `${p.from_name} → `, swatch, " ", el("b", {}, p.to_name), el("br"),
    `${(Number(p.area_m2) / 1e4).toFixed(2)} ha`,
  );
  if (p.reviewed_by) {
    div.append(el("br"), el("span", { class: "reviewed" }, `reviewed by ${p.reviewed_by}, ${String(p.reviewed_at).slice(0, 16).replace("T", " ")}`));
  }
  if (!canReview) return div;
  const select = el("select", { name: "new_class" });
  select.append(document.getElementById("relabel-options").content.cloneNode(true));
  select.value = String(p.new_class ?? p.to_class);
  const actions = el("div", { class: "actions" });
  for (const [action, label] of [["approve", "Approve"], ["reject", "Reject"]]) {
    actions.append(el("button", { "data-action": action }, label));
  }
  actions.append(select, el("button", { "data-action": "relabel" }, "Relabel"));
  actions.querySelectorAll("button").forEach((button) =>
    button.addEventListener("click", () => review(p.id, button.dataset.action, select.value))
  );
  div.append(actions);
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
  const body = { action };
  if (action === "relabel") body.new_class = Number(newClass);
  const response = await fetch(`${base}/api/changes/${changeId}/review`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  const result = await response.json().catch(() => ({}));
  if (!response.ok) {
    say(`review failed: ${result.detail ? JSON.stringify(result.detail) : response.status}`, true);
    return;
  }
  map.closePopup();
  const reloaded = await getJSON(`/api/aois/${aoi}/maps`);
  maps = reloaded;
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
