// psamf's page: posts to the JSON API and draws the reading (inline SVG, no libraries).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function fmt(x) {
  return (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(2);
}

function setBusy(busy, message) {
  $("text-button").disabled = busy;
  $("clip-button").disabled = busy;
  $("status").textContent = message;
  if (busy) $("error").hidden = true;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "The request failed.";
}

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("the server did not answer (" + err.message + ")");
  }
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const e = body && body.error;
    throw new Error(e ? (e.field ? e.field + ": " : "") + e.message
                      : "HTTP " + response.status);
  }
  return body;
}

// The −3…+3 scale with the score's marker.
function drawScale(score) {
  const box = $("scale");
  box.textContent = "";
  const s = svg("svg", { viewBox: "0 0 620 56", role: "presentation" }, box);
  const x = (v) => 20 + (v + 3) / 6 * 580;
  const grad = svg("linearGradient", { id: "g" }, svg("defs", {}, s));
  svg("stop", { offset: "0", "stop-color": "#b3261e" }, grad);
  svg("stop", { offset: ".5", "stop-color": "#c9ccd1" }, grad);
  svg("stop", { offset: "1", "stop-color": "#1b6e3a" }, grad);
  svg("rect", { x: 20, y: 14, width: 580, height: 10, rx: 5, fill: "url(#g)" }, s);
  for (let v = -3; v <= 3; v++) {
    svg("line", { x1: x(v), x2: x(v), y1: 26, y2: 32, stroke: "#5f6368" }, s);
    svg("text", { x: x(v), y: 48, "text-anchor": "middle", "font-size": 13, fill: "#5f6368" }, s)
      .textContent = v > 0 ? "+" + v : String(v);
  }
  const c = Math.max(-3, Math.min(3, score));
  svg("circle", { cx: x(c), cy: 19, r: 9, fill: "#1d1d1f", stroke: "#fff", "stroke-width": 2 }, s);
}

function drawBigFive(bigFive) {
  const dl = $("big-five");
  dl.textContent = "";
  $("big-five-box").hidden = !bigFive;
  if (!bigFive) return;
  for (const [trait, value] of Object.entries(bigFive)) {
    const dt = document.createElement("dt");
    dt.textContent = trait;
    const bar = document.createElement("dd");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.style.width = (Math.max(0, Math.min(1, value)) * 100).toFixed(1) + "%";
    bar.appendChild(fill);
    const num = document.createElement("dd");
    num.textContent = value.toFixed(2);
    dl.append(dt, bar, num);
  }
}

// Segment scores over the clip: one bar per segment, above the axis when positive.
function drawTimeline(segments, duration) {
  const box = $("timeline");
  box.textContent = "";
  const end = Math.max(duration || 0, ...segments.map((g) => g.end), 0.001);
  const W = 620, H = 180, left = 36, right = 10, top = 10, bottom = 24;
  const x = (t) => left + t / end * (W - left - right);
  const y = (v) => top + (3 - Math.max(-3, Math.min(3, v))) / 6 * (H - top - bottom);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
                         "aria-label": "sentiment of each segment over time; see the table" }, box);
  for (const v of [-3, 0, 3]) {
    svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v),
                  stroke: v === 0 ? "#8a8f98" : "#e3e6ea" }, s);
    svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 12 }, s)
      .textContent = v > 0 ? "+" + v : String(v);
  }
  svg("text", { x: W - right, y: H - 6, "text-anchor": "end", "font-size": 12 }, s)
    .textContent = end.toFixed(1) + " s";
  svg("text", { x: left, y: H - 6, "font-size": 12 }, s).textContent = "0 s";
  const tbody = $("segments").querySelector("tbody");
  tbody.textContent = "";
  for (const g of segments) {
    const top_ = Math.min(y(g.score), y(0));
    const rect = svg("rect", { x: x(g.start), width: Math.max(2, x(g.end) - x(g.start) - 1),
      y: top_, height: Math.max(1, Math.abs(y(g.score) - y(0))),
      fill: g.score >= 0 ? "#1b6e3a" : "#b3261e", opacity: 0.8 }, s);
    svg("title", {}, rect).textContent = `${g.start}–${g.end} s: ${fmt(g.score)} ${g.text}`;
    const row = tbody.insertRow();
    for (const cell of [g.start.toFixed(2), g.end.toFixed(2), fmt(g.score), g.text]) {
      row.insertCell().textContent = cell;
    }
  }
}

function show(reading) {
  const cls = reading.sentiment_class;
  $("score").textContent = fmt(reading.score);
  const badge = $("class-label");
  badge.textContent = reading.label + (cls === undefined ? "" : ` (class ${cls > 0 ? "+" : ""}${cls})`);
  badge.className = "badge " + (reading.score > 0.5 ? "pos" : reading.score < -0.5 ? "neg" : "");
  drawScale(reading.score);
  $("transcript").textContent = reading.text || "(no words)";
  drawBigFive(reading.big_five);
  const segments = reading.segments || [];
  $("timeline-box").hidden = segments.length === 0;
  if (segments.length) drawTimeline(segments, reading.duration_s);
  $("result").hidden = false;
  $("status").textContent = `Score ${fmt(reading.score)}, ${reading.label}.`;
}

// A clip's reading: the whole clip's score (duration-weighted mean of its segments).
function clipReading(r) {
  const clip = r.clip || {};
  const score = clip.mean_score ?? clip.score ?? r.score;
  const label = clip.label ?? r.label ?? labelOf(score);
  return { score, label, sentiment_class: clip.sentiment_class ?? r.sentiment_class,
           text: clip.text ?? r.text, big_five: clip.big_five ?? r.big_five,
           segments: r.segments, duration_s: r.duration_s };
}

const NAMES = { "-3": "strongly negative", "-2": "negative", "-1": "weakly negative",
  "0": "neutral", "1": "weakly positive", "2": "positive", "3": "strongly positive" };
function labelOf(score) {
  return NAMES[String(Math.round(Math.max(-3, Math.min(3, score))) || 0)];
}

async function onText(event) {
  event.preventDefault();
  const text = $("text-input").value;
  if (!text.trim()) { showError("text: type a transcript first"); $("text-input").focus(); return; }
  setBusy(true, "Reading the text…");
  try {
    const body = await call("/v1/predict", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }) });
    show(body.results[0]);
  } catch (err) {
    showError(err.message);
  } finally {
    $("text-button").disabled = false;
    $("clip-button").disabled = false;
  }
}

async function onClip(event) {
  event.preventDefault();
  const file = $("clip-input").files[0];
  if (!file) { showError("clip: choose a file first"); $("clip-input").focus(); return; }
  const form = new FormData();
  form.append("clip", file);
  const transcript = $("transcript-input").value;
  if (transcript.trim()) form.append("transcript", transcript);
  setBusy(true, `Reading ${file.name} (speech recognition and features can take a while)…`);
  try {
    show(clipReading(await call("/v1/predict/media", { method: "POST", body: form })));
  } catch (err) {
    showError(err.message);
  } finally {
    $("text-button").disabled = false;
    $("clip-button").disabled = false;
  }
}

function setupDrop() {
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) $("clip-input").files = e.dataTransfer.files;
  });
}

async function modelLine() {
  try {
    const info = await call("/v1/model");
    const card = info.card || {};
    $("model-line").textContent = `Model: ${card.name || card.title || "loaded"} · backend ` +
      `${info.backend}`;
  } catch (_) { /* the line is decoration */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("text-form").addEventListener("submit", onText);
  $("clip-form").addEventListener("submit", onClip);
  setupDrop();
  modelLine();
});
