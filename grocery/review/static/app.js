// The review page: keyboard first. Digits pick the model's guesses, typing searches the
// label list, Enter picks the highlighted label, 0 = not a grocery product, Space = skip.
// Every decision is a POST the server saves to S3 before it answers with the next photo.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const POLL_EMPTY_MS = 15000;
let state = null;
let shown = []; // labels matching the search, in list order
let highlighted = 0;
let busy = false;
let pollTimer = null;

async function api(path, body) {
  const headers = { "X-Review-Token": token };
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: body ? "POST" : "GET",
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch (_) {
    payload = { error: `the server answered ${response.status}` };
  }
  if (!response.ok) throw new Error(payload.error || `the server answered ${response.status}`);
  return payload;
}

const normal = (text) => text.toLowerCase().replace(/[^a-z0-9]/g, "");
const percent = (value) => `${(100 * value).toFixed(0)}%`;

function renderProgress(progress) {
  $("done").textContent = progress.done;
  $("left").textContent = progress.left;
  $("held").textContent = progress.held_by_others
    ? ` (${progress.held_by_others} with other reviewers)`
    : "";
  $("agreement").textContent =
    progress.agreement === null
      ? "–"
      : `${percent(progress.agreement)} (${progress.agreed} of ${progress.labelled} labelled)`;
}

function renderLabels() {
  const query = normal($("filter").value);
  const labels = state && state.item ? state.item.labels : [];
  shown = labels.filter((label) => normal(label).includes(query));
  highlighted = Math.min(highlighted, Math.max(shown.length - 1, 0));
  const list = $("labels");
  list.replaceChildren(
    ...shown.map((label, index) => {
      const li = document.createElement("li");
      li.textContent = label;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(index === highlighted));
      li.addEventListener("click", () => decide("label", label));
      return li;
    }),
  );
  const current = list.children[highlighted];
  if (current) current.scrollIntoView({ block: "nearest" });
}

function render(payload) {
  state = payload;
  $("error").textContent = "";
  $("notice").textContent = payload.notice || "";
  renderProgress(payload.progress);
  const item = payload.item;
  $("review").hidden = !item;
  $("empty").hidden = Boolean(item);
  clearTimeout(pollTimer);
  if (!item) {
    pollTimer = setTimeout(load, POLL_EMPTY_MS);
    return;
  }
  document.body.dataset.item = item.id;
  $("photo").src = item.url;
  $("meta").textContent =
    `${item.source} prediction of model version ${item.model_version}, ${item.time} · ` +
    `labels of ${item.labels_from}`;
  $("topk").replaceChildren(
    ...item.top_k.slice(0, 9).map((guess, index) => {
      const li = document.createElement("li");
      const key = document.createElement("kbd");
      key.textContent = String(index + 1);
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = guess.label;
      button.addEventListener("click", () => decide("label", guess.label));
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = percent(guess.confidence);
      bar.append(fill);
      const value = document.createElement("span");
      value.textContent = percent(guess.confidence);
      li.append(key, button, bar, value);
      return li;
    }),
  );
  $("filter").value = "";
  highlighted = 0;
  renderLabels();
  $("filter").focus();
}

async function load() {
  try {
    render(await api("/api/state"));
  } catch (error) {
    $("error").textContent = error.message;
  }
}

async function decide(verdict, label) {
  if (busy || !state || !state.item) return;
  busy = true;
  try {
    render(await api("/api/decide", { id: state.item.id, verdict, label: label || null }));
  } catch (error) {
    $("error").textContent = `not saved: ${error.message}`;
  } finally {
    busy = false;
  }
}

function onKey(event) {
  if (!state || !state.item || event.ctrlKey || event.metaKey || event.altKey) return;
  const search = $("filter").value;
  const digit = /^[1-9]$/.test(event.key) ? Number(event.key) : 0;
  if (digit) {
    event.preventDefault();
    const guess = state.item.top_k[digit - 1];
    if (guess) decide("label", guess.label);
  } else if (event.key === "0") {
    event.preventDefault();
    decide("not_grocery");
  } else if (event.key === " " && search.trim() === "") {
    event.preventDefault();
    decide("skip");
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    highlighted = Math.min(Math.max(highlighted + step, 0), Math.max(shown.length - 1, 0));
    renderLabels();
  } else if (event.key === "Enter") {
    event.preventDefault();
    if (search.trim() !== "" && shown[highlighted]) decide("label", shown[highlighted]);
  } else if (event.key === "Escape") {
    $("filter").value = "";
    renderLabels();
  } else if (document.activeElement !== $("filter") && event.key.length === 1) {
    $("filter").focus(); // typing anywhere searches
  }
}

document.addEventListener("keydown", onKey);
$("filter").addEventListener("input", () => {
  highlighted = 0;
  renderLabels();
});
$("not-grocery").addEventListener("click", () => decide("not_grocery"));
$("skip").addEventListener("click", () => decide("skip"));
$("photo").addEventListener("error", () => {
  if (state && state.item) $("error").textContent = "the photo did not load: reload the page";
});
load();
