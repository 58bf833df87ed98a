// The textcnn page: plain JavaScript, no build step, nothing from another origin.
// Every text from the user or the model is inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "textcnn-api-key"; // sessionStorage: gone when the tab closes
const state = { info: null, rows: [], order: "input", model: null }; // model: null = default

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function describe(status, detail) {
  const text = Array.isArray(detail)
    ? detail.map((d) => `${d.field}: ${d.message}`).join("; ")
    : String(detail || "");
  switch (status) {
    case 401: return "Key needed: this service needs an API key; enter it above.";
    case 413: return `Too large for the server: ${text}`;
    case 422: return `Not accepted: ${text}`;
    case 503: return `The model is not ready yet (${text}); try again in a moment.`;
    default: return `The server answered ${status}: ${text || "no detail"}`;
  }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new ApiError(0, "The server cannot be reached; is it running?");
  }
  if (response.ok) return response;
  let detail = "";
  try {
    detail = (await response.json()).detail;
  } catch (error) { /* not JSON: the status says enough */ }
  if (response.status === 401) $("key-section").hidden = false;
  throw new ApiError(response.status, describe(response.status, detail));
}

async function classifyTexts(texts, explain) {
  const response = await api("/classify", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ texts, explain, top_k: null, ...(state.model ? { model: state.model } : {}) }),
  });
  return (await response.json()).results;
}

// -- one text ------------------------------------------------------------------------------

// The answer in words: the label, a multi-label model's every assigned label, or "not sure".
function answerOf(result) {
  if (result.abstained) return "not sure";
  if (state.info && state.info.multi_label) {
    const given = result.labels.filter((l) => l.assigned).map((l) => l.label);
    return given.length ? given.join(", ") : "no label";
  }
  return result.label ?? "no label";
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function showBars(labels) {
  const bars = $("bars");
  bars.replaceChildren();
  for (const { label, score, assigned } of labels) {
    const row = element("div", undefined, assigned ? "bar assigned" : "bar");
    row.setAttribute("role", "listitem");
    const track = element("div", undefined, "track");
    const fill = element("div", undefined, "fill");
    fill.style.width = `${(100 * score).toFixed(1)}%`; // CSSOM: allowed by the CSP
    track.append(fill);
    row.append(element("span", label), track, element("span", `${(100 * score).toFixed(1)}%`));
    bars.append(row);
  }
}

// The spans may overlap: the text is cut at every span boundary and each piece is shaded
// by the summed weight of the spans that cover it, their n-grams and weights on hover.
// Offsets count code points (Python's), hence Array.from rather than UTF-16 indices.
function showHighlights(text, spans) {
  const chars = Array.from(text);
  const cuts = new Set([0, chars.length]);
  for (const s of spans) cuts.add(s.start).add(s.end);
  const bounds = [...cuts].sort((a, b) => a - b);
  const pieces = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const [start, end] = [bounds[i], bounds[i + 1]];
    const covering = spans.filter((s) => s.start <= start && s.end >= end);
    const weight = covering.reduce((sum, s) => sum + s.weight, 0);
    pieces.push({ start, end, covering, weight });
  }
  const strongest = Math.max(...pieces.map((p) => p.weight), 1e-9);
  const out = $("highlighted");
  out.replaceChildren();
  for (const piece of pieces) {
    const part = chars.slice(piece.start, piece.end).join("");
    if (!piece.covering.length) {
      out.append(document.createTextNode(part));
      continue;
    }
    const mark = element("mark", part);
    mark.dataset.start = piece.start;
    mark.dataset.end = piece.end;
    mark.style.backgroundColor = `rgba(255, 170, 0, ${0.2 + 0.8 * (piece.weight / strongest)})`;
    mark.title = piece.covering.map((s) => `“${s.text}” +${s.weight.toFixed(3)}`).join("\n");
    out.append(mark);
  }
  const list = $("spans");
  list.replaceChildren();
  for (const s of spans) {
    const item = element("li");
    const ngram = element("q", s.text, "ngram");
    item.dataset.start = s.start;
    item.dataset.end = s.end;
    item.append(ngram, element("span", `+${s.weight.toFixed(3)}`, "weight"));
    list.append(item);
  }
  if (!spans.length) list.append(element("li", "no n-gram voted for this label"));
}

async function classifyOne(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) {
    say("Type a text first.", true);
    return;
  }
  say("Classifying…");
  try {
    const [result] = await classifyTexts([text], true);
    $("label").textContent = answerOf(result);
    const notes = [result.truncated ? "text truncated" : "", result.abstained ? "under the minimum score" : ""];
    const note = notes.filter(Boolean).join(", ");
    $("score").textContent = `${(100 * result.score).toFixed(1)}%${note ? ` (${note})` : ""}`;
    showBars(result.labels);
    showHighlights(text, result.explanation || []);
    $("result").hidden = false;
    say("");
  } catch (error) {
    say(error.message, true);
  }
}

// -- many texts ----------------------------------------------------------------------------

function parseCsv(source) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && source[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function batchTexts() {
  const file = $("file").files[0];
  if (!file) return $("lines").value.split(/\r?\n/);
  const content = await file.text();
  if (!file.name.toLowerCase().endsWith(".csv")) return content.split(/\r?\n/);
  const [header, ...rows] = parseCsv(content);
  const column = Math.max(0, header.findIndex((name) => name.trim().toLowerCase() === "text"));
  return rows.map((row) => row[column] || "");
}

// Chunks within the server's limits: texts per request and bytes per body.
function chunks(items, info) {
  const maxTexts = Math.min(info.max_texts_per_request, 64); // small steps for the progress bar
  const maxBytes = 0.9 * info.max_body_bytes;
  const encoder = new TextEncoder();
  const out = [];
  let current = [], bytes = 64;
  for (const item of items) {
    const size = encoder.encode(JSON.stringify(item.text)).length + 1;
    if (current.length && (current.length >= maxTexts || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 64;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

function showTable() {
  const rows = [...state.rows];
  if (state.order !== "input") {
    const sign = state.order === "descending" ? -1 : 1;
    rows.sort((a, b) => sign * ((a.score ?? -1) - (b.score ?? -1)));
  }
  const body = $("table").tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const tr = element("tr");
    const score = row.score === undefined ? row.note : row.score.toFixed(4);
    tr.append(element("td", String(row.line)), element("td", row.text, "text"),
      element("td", row.label ?? "—"), element("td", score));
    body.append(tr);
  }
  $("sort-score").parentElement.setAttribute("aria-sort", state.order === "input" ? "none" : state.order);
}

function csvCell(value) {
  let text = String(value ?? "");
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // a spreadsheet must not run it
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function offerCsv() {
  const lines = ["line,text,label,score"];
  for (const row of state.rows) {
    lines.push([row.line, row.text, row.label, row.score?.toFixed(6)].map(csvCell).join(","));
  }
  const link = $("download");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
}

async function scoreMany(event) {
  event.preventDefault();
  if (!state.info) {
    say("The model card is not loaded yet; wait a moment (or enter the key).", true);
    return;
  }
  const texts = await batchTexts();
  const items = [], limit = state.info.max_text_chars;
  texts.forEach((text, i) => { if (text.trim()) items.push({ line: i + 1, text }); });
  if (!items.length) {
    say("Paste some lines or choose a file first.", true);
    return;
  }
  state.rows = items;
  state.order = "input";
  const sendable = items.filter((item) => Array.from(item.text).length <= limit);
  for (const item of items) if (!sendable.includes(item)) item.note = `over ${limit} characters`;
  const progress = $("progress");
  progress.hidden = false;
  progress.max = items.length;
  progress.value = items.length - sendable.length;
  $("batch-result").hidden = false;
  say("");
  try {
    for (const chunk of chunks(sendable, state.info)) {
      const results = await classifyTexts(chunk.map((item) => item.text), false);
      results.forEach((result, j) => Object.assign(chunk[j], { label: answerOf(result), score: result.score }));
      progress.value += chunk.length;
      $("progress-text").textContent = `${progress.value} of ${items.length} scored`;
      showTable();
    }
    offerCsv();
    say(`Scored ${sendable.length} texts${sendable.length < items.length ? `; ${items.length - sendable.length} too long to send` : ""}.`);
  } catch (error) {
    showTable();
    say(error.message, true);
  }
}

function toggleSort() {
  state.order = { input: "descending", descending: "ascending", ascending: "input" }[state.order];
  showTable();
}

// -- the model card ------------------------------------------------------------------------

function percent(value) {
  return `${(100 * value).toFixed(1)}%`;
}

// ?model=NAME of the picked model ("" for the default)
function modelQuery() {
  return state.model ? `?model=${encodeURIComponent(state.model)}` : "";
}

// With several models served, a picker (the names come from GET /models, as text).
async function loadModels() {
  let listed;
  try {
    listed = await (await api("/models")).json();
  } catch (error) {
    return; // an older server, or a key not yet given: the default model only
  }
  const picker = $("model-picker");
  picker.replaceChildren();
  for (const m of listed.models) {
    const option = element("option", m.state === "ready" ? m.name : `${m.name} (${m.state})`);
    option.value = m.name;
    option.selected = m.name === (state.model || listed.default);
    picker.append(option);
  }
  $("picker").hidden = listed.models.length < 2;
}

function pickModel() {
  state.model = $("model-picker").value;
  $("result").hidden = true;
  loadCard();
}

async function loadCard() {
  let info;
  try {
    info = await (await api(`/info${modelQuery()}`)).json();
  } catch (error) {
    say(error.message, true);
    if (error.status === 503) setTimeout(loadCard, 2000);
    return;
  }
  state.info = info;
  $("key-section").hidden = true;
  $("model-name").textContent = `${info.model.name} · ${info.model.version}`;
  const card = $("card");
  card.replaceChildren();
  const facts = [
    ["labels", info.labels.join(", ")],
    ["architecture", info.architecture],
    ["maximum length", `${info.max_length_tokens} tokens`],
    ["created", info.created],
  ];
  if (info.multi_label) facts.push(["kind", "multi-label: every label over its threshold"]);
  for (const [split, m] of Object.entries(info.metrics || {})) {
    const main = m.accuracy !== undefined ? `accuracy ${percent(m.accuracy)}` : `micro-F1 ${percent(m.micro_f1)}`;
    const ece = m.ece !== undefined ? `, calibration error ${m.ece.toFixed(3)}` : "";
    facts.push([split, `${main} (macro-F1 ${percent(m.macro_f1)}${ece}, ${m.examples} examples)`]);
  }
  for (const [name, value] of facts) card.append(element("dt", name), element("dd", String(value ?? "—")));
  say("");
  $("confusion-caption").textContent = info.multi_label ? "F1 of every label" : "Confusion matrix";
  for (const [path, id] of [["/confusion.png", "confusion"], ["/reliability.png", "reliability"]]) {
    try {
      const picture = await (await api(`${path}${modelQuery()}`)).blob();
      $(id).src = URL.createObjectURL(picture);
      $(`${id}-figure`).hidden = false;
    } catch (error) { /* a model directory without the picture: the card says enough */
      $(`${id}-figure`).hidden = true;
    }
  }
}

function useKey(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  say("Checking the key…");
  loadCard();
  loadModels();
}

document.addEventListener("DOMContentLoaded", () => {
  $("one-form").addEventListener("submit", classifyOne);
  $("batch-form").addEventListener("submit", scoreMany);
  $("key-form").addEventListener("submit", useKey);
  $("sort-score").addEventListener("click", toggleSort);
  $("model-picker").addEventListener("change", pickModel);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("one-form").requestSubmit();
  });
  loadCard();
  loadModels();
});
