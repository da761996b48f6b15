// The web page: browse, like/dislike (an anonymous session), pick a user, see similar products.
"use strict";
const state = { liked: new Set(), disliked: new Set(), user: "", cursor: null };
const $ = (id) => document.getElementById(id);

// Only the answer to the latest ask of each kind is shown: an earlier answer that comes late (likes
// clicked quickly, a search typed while the page starts) is dropped. `ask` returns "still the latest?".
const asked = {};
function ask(kind) {
  const count = (asked[kind] || 0) + 1;
  asked[kind] = count;
  return () => asked[kind] === count;
}

const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
const KEY = meta("recommender-key");

// Every call sends the page's read key; over the key's rate (429) it waits Retry-After and tries again.
async function api(path, options, attempt = 0) {
  const headers = { ...((options || {}).headers || {}), ...(KEY ? { Authorization: `Bearer ${KEY}` } : {}) };
  const response = await fetch(path, { ...(options || {}), headers });
  if (response.status === 429 && attempt < 5) {
    const wait = Number(response.headers.get("Retry-After")) || 1;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    return api(path, options, attempt + 1);
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
  children.forEach((child) => node.append(child));
  return node;
}

const REASONS = {
  similar_to: (name) => `Because of ${name}`,
  people_also_liked: (name) => `People who liked ${name} liked this`,
  people_watched_next: (name) => `People went on to this after ${name}`,
};

function reasonText(reasons) {
  return reasons.map((r) => r.type in REASONS ? REASONS[r.type](r.title || r.product_id)
    : r.type === "popular" ? "Popular" : r.type).join("; ");
}

function productCard(product, extra) {
  const card = el("li", { class: "card", "data-id": product.id },
    el("h3", {}, product.title),
    el("div", { class: "meta" }, [product.year, product.genres.join(", ")].filter(Boolean).join(" · ")),
    el("p", { class: "desc" }, product.description));
  // Browse results carry the embedding status: say when a product is not (yet) searchable by meaning.
  if (product.embedding_status === "pending") card.append(el("div", { class: "status pending" }, "Embedding pending"));
  if (product.embedding_status === "failed") {
    card.append(el("div", { class: "status failed", title: product.embedding_error || "" },
      `Embedding failed: ${product.embedding_error || "unknown reason"}`));
  }
  if (extra) card.append(extra);
  const actions = el("div", { class: "actions" });
  if (!state.user) {
    for (const [kind, label] of [["like", "Like"], ["dislike", "Dislike"]]) {
      const set = kind === "like" ? state.liked : state.disliked;
      const button = el("button", { class: kind, "aria-pressed": String(set.has(product.id)) }, label);
      button.addEventListener("click", () => mark(product.id, kind));
      actions.append(button);
    }
  }
  const similar = el("button", { class: "similar" }, "Similar");
  similar.addEventListener("click", () => showSimilar(product));
  actions.append(similar);
  card.append(actions);
  return card;
}

function mark(id, kind) {
  const [set, other] = kind === "like" ? [state.liked, state.disliked] : [state.disliked, state.liked];
  if (set.has(id)) set.delete(id); else { set.add(id); other.delete(id); }
  document.querySelectorAll(`#products [data-id="${CSS.escape(id)}"] .actions button`).forEach((b) => {
    if (b.classList.contains("like")) b.setAttribute("aria-pressed", String(state.liked.has(id)));
    if (b.classList.contains("dislike")) b.setAttribute("aria-pressed", String(state.disliked.has(id)));
  });
  loadRecommendations();
}

async function search(append) {
  const latest = ask("search");
  const params = new URLSearchParams({ limit: "20" });
  if ($("query").value.trim()) params.set("query", $("query").value.trim());
  if ($("genre").value) params.set("genre", $("genre").value);
  if (append && state.cursor) params.set("cursor", state.cursor);
  const page = await api(`/v1/products?${params}`);
  if (!latest()) return;
  if (!append) $("products").replaceChildren();
  page.items.forEach((p) => $("products").append(productCard(p)));
  state.cursor = page.next_cursor;
  $("more").hidden = !page.next_cursor;
}

function showRecommendations(target, items) {
  $(target).replaceChildren(...items.map((item) =>
    productCard(item.product, el("div", { class: "reason" }, reasonText(item.reasons)))));
}

async function loadRecommendations() {
  const latest = ask("recommendations");
  let page;
  if (state.user) {
    page = await api(`/v1/users/${encodeURIComponent(state.user)}/recommendations?limit=10`);
  } else {
    page = await api("/v1/recommendations", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ liked: [...state.liked], disliked: [...state.disliked], limit: 10 }) });
  }
  if (!latest()) return;
  $("rec-hint").hidden = Boolean(state.user || state.liked.size || state.disliked.size);
  showRecommendations("recommendations", page.items);
  $("recommendations").dataset.loaded = String(Number($("recommendations").dataset.loaded || 0) + 1);
}

async function showSimilar(product) {
  const latest = ask("similar");
  const page = await api(`/v1/products/${encodeURIComponent(product.id)}/similar?limit=5`);
  if (!latest()) return;
  $("similar-title").textContent = product.title;
  $("similar-panel").hidden = false;
  showRecommendations("similar", page.items);
}

async function pickUser(user) {
  state.user = user;
  $("history-panel").hidden = !user;
  if (user) {
    const history = await api(`/v1/users/${encodeURIComponent(user)}/interactions?limit=50`);
    $("history").replaceChildren(...history.items.map((e) =>
      el("li", {}, `${e.type}${e.value != null ? " " + e.value : ""}: ${e.title || e.product_id}`)));
  }
  await search(false);
  await loadRecommendations();
}

async function start() {
  if (meta("recommender-mode") === "demo") {
    document.body.prepend(el("p", { class: "demo", role: "status" },
      "Demo mode: the demo tenant's catalogue, with its read key built into this page."));
  }
  if (!KEY) throw new Error("this page has no API key: start the api with PAGE_KEY set to a read key");
  // The form is the page's before anything loads: a search made meanwhile is not a page reload.
  $("search").addEventListener("submit", (event) => { event.preventDefault(); search(false); });
  $("more").addEventListener("click", () => search(true));
  $("user-picker").addEventListener("change", (event) => pickUser(event.target.value));
  const [genres, users] = await Promise.all([api("/v1/genres"), api("/v1/users")]);
  genres.items.forEach((g) => $("genre").append(el("option", { value: g.genre }, g.genre)));
  users.items.forEach((u) => $("user-picker").append(el("option", { value: u.id }, `${u.id} (${u.interactions})`)));
  if (!asked.search) await search(false);
  await loadRecommendations();
}

start().catch((error) => { document.body.prepend(el("p", { class: "error" }, `Error: ${error.message}`)); });
