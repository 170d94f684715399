/*
 * Tandem playground. Plain JavaScript, no build step, no third-party code.
 *
 * Everything comes from the public API with the user's key (sessionStorage, this tab only):
 *   GET  /v1/indexes                 the index list
 *   GET  /v1/indexes/{name}          (not needed: the list already has versions and sizes)
 *   POST /v1/indexes/{name}/search   hits
 *   POST /v1/indexes/{name}/ask      an answer; with "stream": true Server-Sent Events
 *                                    ("token" events, then one "done" event)
 * Errors are shown as the API words them: {"error": {"code", "message"}}.
 * Text from the API is only ever put in the page as text (textContent), never as HTML.
 */
(() => {
  "use strict";

  const KEY_STORE = "tandem.playground.key";
  const INDEX_STORE = "tandem.playground.index";
  const TAB_STORE = "tandem.playground.tab";

  const $ = (id) => document.getElementById(id);

  const state = {
    key: readStore(KEY_STORE),
    indexes: [],
    selected: readStore(INDEX_STORE),
    askAbort: null,
    openCitation: null,
    lastTrigger: null,
  };

  // -- small helpers --------------------------------------------------------------------------
  function readStore(name) {
    try {
      return window.sessionStorage.getItem(name) || null;
    } catch {
      return null;
    }
  }

  function writeStore(name, value) {
    try {
      if (value) window.sessionStorage.setItem(name, value);
      else window.sessionStorage.removeItem(name);
    } catch {
      /* storage disabled: keep it in memory only */
    }
  }

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const fmtMs = (ms) => (ms >= 100 ? `${Math.round(ms)} ms` : `${Number(ms).toFixed(1)} ms`);
  const fmtNum = (n) => Number(n).toLocaleString("en");
  const fmtScore = (x) => (typeof x === "number" ? x.toFixed(4) : String(x));
  const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
  const basename = (path) => String(path).split(/[\\/]/).filter(Boolean).pop() || String(path);

  function showError(node, err) {
    node.replaceChildren(el("span", { class: "message", text: err.message }));
    if (err.status) {
      node.append(el("span", { class: "code", text: `(${err.status} ${err.code})` }));
    }
    node.hidden = false;
  }

  function hideError(node) {
    node.hidden = true;
    node.replaceChildren();
  }

  // -- the API --------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
    }
  }

  /** The API's error as an ApiError; a 401 also asks for a (new) key. */
  async function errorOf(response) {
    let code = `http_${response.status}`;
    let message = `${response.status} ${response.statusText || "error"}`;
    try {
      const body = await response.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch {
      /* not JSON: keep the status line */
    }
    const err = new ApiError(response.status, code, message);
    if (response.status === 401) keyRejected(err);
    return err;
  }

  async function api(path, { method = "GET", body, signal, accept = "application/json" } = {}) {
    const headers = { Accept: accept };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (exc) {
      if (exc && exc.name === "AbortError") throw exc;
      throw new ApiError(0, "network", `The service cannot be reached: ${exc.message}`);
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  const indexPath = (name, action) =>
    `/v1/indexes/${encodeURIComponent(name)}${action ? `/${action}` : ""}`;

  // -- Server-Sent Events over fetch() ----------------------------------------------------------
  /** One event block ("field: value" lines) as {event, data}; null when it carries no data. */
  function parseEventBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value || "message";
      else if (field === "data") data.push(value);
    }
    return data.length ? { event, data: data.join("\n") } : null;
  }

  /** The events of an SSE response body, as they arrive. */
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let dropLeadingLF = false;
    const drain = function* () {
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseEventBlock(block);
        if (event) yield event;
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        let text = decoder.decode(value, { stream: true });
        if (dropLeadingLF && text.startsWith("\n")) text = text.slice(1);
        dropLeadingLF = text.endsWith("\r"); // a CRLF split across two chunks
        buffer += text.replace(/\r\n?/g, "\n");
        yield* drain();
      }
      buffer += decoder.decode().replace(/\r\n?/g, "\n");
      yield* drain();
      const last = buffer.trim() ? parseEventBlock(buffer) : null;
      if (last) yield last;
    } finally {
      reader.releaseLock();
    }
  }

  function parseJson(text, what) {
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(0, "bad_stream", `The service sent a malformed ${what} event.`);
    }
  }

  // -- API key ----------------------------------------------------------------------------------
  const keyDialog = $("key-dialog");

  function setKeyStatus(text, kind) {
    const status = $("key-status");
    status.textContent = text;
    status.dataset.state = kind;
    $("key-forget").hidden = !state.key;
    $("key-change").textContent = state.key ? "Change key" : "Set API key";
  }

  function openKeyDialog(message) {
    const error = $("key-error");
    if (message) {
      error.textContent = message;
      error.hidden = false;
    } else {
      error.hidden = true;
    }
    const input = $("key-input");
    input.value = "";
    if (!keyDialog.open) keyDialog.showModal();
    input.focus();
  }

  /** A 401: forget the key that failed and ask for one, showing the API's words. */
  function keyRejected(err) {
    state.key = null;
    writeStore(KEY_STORE, null);
    setKeyStatus("API key needed", "error");
    openKeyDialog(err.message);
  }

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) {
      openKeyDialog("Enter an API key.");
      return;
    }
    state.key = key; // kept in the tab's storage only once the API accepts it
    setKeyStatus("Checking key…", "unknown");
    const submit = $("key-submit");
    submit.disabled = true;
    try {
      if (await loadIndexes()) keyDialog.close();
    } finally {
      submit.disabled = false;
    }
  });
  $("key-cancel").addEventListener("click", () => keyDialog.close());
  $("key-change").addEventListener("click", () => openKeyDialog(null));
  $("key-forget").addEventListener("click", () => {
    state.key = null;
    writeStore(KEY_STORE, null);
    loadIndexes();
  });

  // -- indexes ------------------------------------------------------------------------------------
  async function loadIndexes() {
    const error = $("indexes-error");
    hideError(error);
    let data;
    try {
      data = await (await api("/v1/indexes")).json();
    } catch (err) {
      if (err.status !== 401) {
        showError(error, err);
        setKeyStatus("Not connected", "error");
      }
      return false;
    }
    writeStore(KEY_STORE, state.key);
    setKeyStatus(state.key ? "Key accepted" : "Connected (no key needed)", "ok");
    state.indexes = data.indexes || [];
    if (!state.indexes.some((ix) => ix.name === state.selected)) {
      state.selected = state.indexes.length ? state.indexes[0].name : null;
    }
    renderIndexes();
    return true;
  }

  function renderIndexes() {
    const list = $("index-list");
    list.replaceChildren(
      ...state.indexes.map((ix) =>
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "index-item",
              "aria-pressed": String(ix.name === state.selected),
              "data-index": ix.name,
              onclick: () => selectIndex(ix.name),
            },
            el(
              "span",
              { class: "index-name" },
              el("span", { text: ix.name }),
              el("span", { class: "badge", text: `v${ix.version}` }),
            ),
            el("span", {
              class: "index-sizes",
              text: `${fmtNum(ix.documents)} documents · ${fmtNum(ix.chunks)} chunks`,
            }),
            el("span", { class: "index-extra", text: `${ix.store} · ${ix.embedder}` }),
            el("span", {
              class: "index-extra",
              text: `built ${String(ix.created_at).slice(0, 16).replace("T", " ")}`,
            }),
          ),
        ),
      ),
    );
    $("indexes-empty").hidden = state.indexes.length > 0;
    showTarget();
  }

  function selectIndex(name) {
    state.selected = name;
    writeStore(INDEX_STORE, name);
    for (const button of document.querySelectorAll(".index-item")) {
      button.setAttribute("aria-pressed", String(button.dataset.index === name));
    }
    showTarget();
  }

  function showTarget() {
    const ix = state.indexes.find((i) => i.name === state.selected);
    for (const node of document.querySelectorAll("[data-target]")) {
      node.textContent = ix ? `${ix.name} (v${ix.version})` : "none selected";
    }
  }

  function requireIndex(errorNode) {
    if (state.selected) return state.selected;
    showError(errorNode, new ApiError(0, "no_index", "Pick an index first."));
    return null;
  }

  $("indexes-reload").addEventListener("click", () => loadIndexes());

  // -- tabs ----------------------------------------------------------------------------------------
  const tabs = [$("tab-search"), $("tab-ask")];

  function selectTab(tab, focus) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    writeStore(TAB_STORE, tab.id);
    if (focus) tab.focus();
  }

  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const i = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(i + 1) % tabs.length],
        ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        selectTab(next, true);
      }
    });
  }

  // -- metadata filters ------------------------------------------------------------------------------
  let filterRowId = 0;

  function addFilterRow(fieldset, key = "", value = "") {
    const rows = fieldset.querySelector("[data-filter-rows]");
    const id = `${fieldset.dataset.filters}-filter-${++filterRowId}`;
    const n = rows.children.length + 1;
    const row = el(
      "div",
      { class: "filter-row" },
      el("label", { class: "visually-hidden", for: `${id}-key`, text: `Filter ${n} field` }),
      el("input", { id: `${id}-key`, type: "text", placeholder: "field, e.g. topic", "data-key": true }),
      el("span", { class: "eq", "aria-hidden": "true", text: "=" }),
      el("label", { class: "visually-hidden", for: `${id}-value`, text: `Filter ${n} value` }),
      el("input", { id: `${id}-value`, type: "text", placeholder: "value", "data-value": true }),
      el("button", {
        type: "button",
        class: "btn ghost small",
        "aria-label": `Remove filter ${n}`,
        text: "Remove",
        onclick: () => {
          row.remove();
          if (!rows.children.length) addFilterRow(fieldset);
        },
      }),
    );
    row.querySelector("[data-key]").value = key;
    row.querySelector("[data-value]").value = value;
    rows.append(row);
    return row;
  }

  /** {field: value | [values]} from the rows with both parts filled; undefined when none. */
  function readFilters(fieldset) {
    const out = {};
    for (const row of fieldset.querySelectorAll(".filter-row")) {
      const key = row.querySelector("[data-key]").value.trim();
      const value = row.querySelector("[data-value]").value.trim();
      if (!key || !value) continue;
      if (key in out) out[key] = [].concat(out[key], value);
      else out[key] = value;
    }
    return Object.keys(out).length ? out : undefined;
  }

  for (const fieldset of document.querySelectorAll("[data-filters]")) {
    addFilterRow(fieldset);
    fieldset.querySelector("[data-add-filter]").addEventListener("click", () => {
      addFilterRow(fieldset).querySelector("[data-key]").focus();
    });
  }

  /** Put field=value in the first empty row (or a new one) of a fieldset. */
  function useFilter(fieldset, key, value) {
    let row = [...fieldset.querySelectorAll(".filter-row")].find(
      (r) => !r.querySelector("[data-key]").value && !r.querySelector("[data-value]").value,
    );
    if (!row) row = addFilterRow(fieldset);
    row.querySelector("[data-key]").value = key;
    row.querySelector("[data-value]").value = value;
  }

  function renderTimings(node, timings, bars) {
    const entries = Object.entries(timings || {}).filter(([, ms]) => typeof ms === "number");
    const max = Math.max(1e-9, ...entries.map(([, ms]) => ms)); // bars are shares of the total
    node.replaceChildren(
      ...entries.map(([stage, ms]) => {
        const row = el("div", { "data-stage": stage }, el("dt", { text: stage }));
        if (bars) {
          const bar = el("span", { class: "bar" });
          bar.style.width = `${Math.max(0.5, (100 * ms) / max)}%`;
          row.append(el("dd", { class: "bar-track", "aria-hidden": "true" }, bar));
        }
        row.append(el("dd", { text: fmtMs(ms) }));
        return row;
      }),
    );
  }

  // -- search ------------------------------------------------------------------------------------------
  const searchFilters = document.querySelector('[data-filters="search"]');

  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("search-error");
    hideError(error);
    const name = requireIndex(error);
    const query = $("search-query").value.trim();
    if (!name) return;
    if (!query) {
      showError(error, new ApiError(0, "empty_query", "Type a query first."));
      $("search-query").focus();
      return;
    }
    const body = {
      query,
      top_k: Number($("search-top-k").value) || 5,
      mode: $("search-mode").value,
    };
    const filters = readFilters(searchFilters);
    if (filters) body.filters = filters;
    const rerank = $("search-rerank").value;
    if (rerank) body.rerank = rerank === "true";

    const submit = $("search-submit");
    submit.disabled = true;
    try {
      const response = await api(indexPath(name, "search"), { method: "POST", body });
      renderHits(await response.json());
    } catch (err) {
      $("search-result").hidden = true;
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });

  function renderHits(data) {
    const hits = data.hits || [];
    const total = data.timings_ms && data.timings_ms.total;
    $("search-summary").textContent =
      `${hits.length} ${hits.length === 1 ? "hit" : "hits"} from ${data.index} v${data.version}` +
      (total !== undefined ? ` in ${fmtMs(total)}` : "") +
      (data.cached ? " (cached)" : "");
    renderTimings($("search-timings"), data.timings_ms, false);
    $("search-hits").replaceChildren(
      ...hits.map((hit) =>
        el(
          "li",
          { class: "card hit", "data-doc-id": hit.doc_id },
          el(
            "div",
            { class: "hit-head" },
            el("span", { class: "rank", text: `#${hit.rank}` }),
            el("span", { class: "score", title: "score", text: fmtScore(hit.score) }),
            el("span", { class: "source", title: hit.source, text: basename(hit.source) }),
            el("span", { class: "ids", title: hit.chunk_id, text: chunkLabel(hit) }),
          ),
          el("p", { class: "hit-text", text: hit.text }),
          metadataChips(hit.metadata || {}),
        ),
      ),
    );
    $("search-result").hidden = false;
  }

  /** "doc · chunk", without repeating the document id the chunk id starts with. */
  function chunkLabel(hit) {
    const chunk = String(hit.chunk_id);
    const doc = String(hit.doc_id);
    const part = chunk.startsWith(doc) ? chunk.slice(doc.length).replace(/^[^A-Za-z0-9]+/, "") : "";
    return part ? `${doc} · chunk ${part}` : `${doc} · ${chunk}`;
  }

  function metadataChips(metadata) {
    const entries = Object.entries(metadata).filter(
      ([, v]) => v !== null && typeof v !== "object",
    );
    if (!entries.length) return null;
    return el(
      "div",
      { class: "chips", role: "group", "aria-label": "Metadata (choose one to filter by it)" },
      ...entries.map(([k, v]) =>
        el("button", {
          type: "button",
          class: "chip",
          title: `Filter by ${k}=${v}`,
          text: clip(`${k}=${v}`, 40),
          onclick: () => useFilter(searchFilters, k, String(v)),
        }),
      ),
    );
  }

  // -- ask ---------------------------------------------------------------------------------------------
  const askFilters = document.querySelector('[data-filters="ask"]');
  const answerText = $("answer-text");

  function resetAnswer() {
    closePassage();
    answerText.replaceChildren();
    answerText.dataset.tokens = "0";
    for (const id of [
      "answer-legend",
      "answer-unfound",
      "answer-facts",
      "answer-reason",
      "answer-citations-box",
      "answer-timings-box",
    ]) {
      $(id).hidden = true;
    }
    $("answer").dataset.state = "pending";
    $("answer").hidden = false;
  }

  $("ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("ask-error");
    hideError(error);
    const name = requireIndex(error);
    const question = $("ask-question").value.trim();
    if (!name) return;
    if (!question) {
      showError(error, new ApiError(0, "empty_question", "Type a question first."));
      $("ask-question").focus();
      return;
    }
    const stream = $("ask-stream").checked;
    const body = {
      question,
      mode: document.querySelector('input[name="ask-mode"]:checked').value,
      top_k: Number($("ask-top-k").value) || 5,
      stream,
    };
    const filters = readFilters(askFilters);
    if (filters) body.filters = filters;

    resetAnswer();
    const abort = new AbortController();
    state.askAbort = abort;
    $("ask-submit").disabled = true;
    $("ask-stop").hidden = false;
    $("answer-status").textContent = stream ? "Streaming…" : "Waiting for the answer…";
    answerText.setAttribute("aria-busy", "true");
    let streamed = "";
    try {
      const response = await api(indexPath(name, "ask"), {
        method: "POST",
        body,
        signal: abort.signal,
        accept: stream ? "text/event-stream" : "application/json",
      });
      const type = response.headers.get("content-type") || "";
      let final = null;
      if (type.includes("text/event-stream")) {
        for await (const ev of sseEvents(response.body)) {
          if (ev.event === "token") {
            const piece = parseJson(ev.data, "token");
            streamed += typeof piece === "string" ? piece : (piece.text ?? piece.token ?? "");
            answerText.textContent = streamed;
            answerText.dataset.tokens = String(Number(answerText.dataset.tokens) + 1);
          } else if (ev.event === "reset") {
            // The streaming LLM failed part-way: its text is dropped and the small answer follows.
            const data = parseJson(ev.data, "reset");
            streamed = "";
            answerText.textContent = "";
            $("answer-status").textContent =
              `The LLM stopped (${data.reason || "error"}); the small answer follows…`;
          } else if (ev.event === "done") {
            final = parseJson(ev.data, "done");
          } else if (ev.event === "error") {
            const data = parseJson(ev.data, "error");
            const detail = data.error || data;
            throw new ApiError(0, detail.code || "error", detail.message || "The answer failed.");
          }
        }
        if (!final) {
          throw new ApiError(0, "stream_ended", "The stream ended before the answer was complete.");
        }
        if (typeof final.answer !== "string") final.answer = streamed;
      } else {
        final = await response.json();
      }
      renderAnswer(final);
    } catch (err) {
      if (err && err.name === "AbortError") {
        $("answer-status").textContent = "Stopped.";
        $("answer").dataset.state = "stopped";
      } else {
        $("answer-status").textContent = "";
        $("answer").dataset.state = "error";
        if (!streamed) $("answer").hidden = true;
        showError(error, err);
      }
    } finally {
      answerText.setAttribute("aria-busy", "false");
      state.askAbort = null;
      $("ask-submit").disabled = false;
      $("ask-stop").hidden = true;
    }
  });

  $("ask-stop").addEventListener("click", () => {
    if (state.askAbort) state.askAbort.abort();
  });

  /** The text of an entry of grounded.unsupported (a sentence, or an object holding one). */
  function sentenceOf(item) {
    if (typeof item === "string") return item;
    if (item && typeof item === "object") return item.sentence ?? item.text ?? "";
    return "";
  }

  /** [start, end) ranges of the unsupported sentences found in the text, sorted, disjoint. */
  function unsupportedRanges(text, sentences) {
    const ranges = [];
    const unfound = [];
    for (const sentence of sentences) {
      const s = sentence.trim();
      if (!s) continue;
      const at = text.indexOf(s);
      if (at < 0) unfound.push(s);
      else ranges.push([at, at + s.length]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push(r);
    }
    return { ranges: merged, unfound };
  }

  /** Text with each [n] (or [n, m]) turned into buttons that open citation n. */
  function withCitations(text, citations) {
    const nodes = [];
    const pattern = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
    let last = 0;
    let match;
    while ((match = pattern.exec(text)) !== null) {
      const numbers = match[1].split(",").map((n) => Number(n.trim()));
      if (!numbers.every((n) => citations.has(n))) continue;
      nodes.push(text.slice(last, match.index));
      for (const n of numbers) nodes.push(citeButton(citations.get(n), `[${n}]`, "cite"));
      last = match.index + match[0].length;
    }
    nodes.push(text.slice(last));
    return nodes.filter((n) => n !== "");
  }

  function citeButton(citation, label, cls) {
    return el("button", {
      type: "button",
      class: cls,
      "data-cite": citation.n,
      "aria-expanded": "false",
      "aria-controls": "passage",
      "aria-label": `Citation ${citation.n}: ${basename(citation.source)}`,
      text: label,
      onclick: (event) => openPassage(citation, event.currentTarget),
    });
  }

  /** Routing reasons (`reason` of an answer), in words. */
  const REASONS = {
    requested: "the small models answered, as asked",
    no_llm: "no LLM is configured, so the small models answered",
    constrained: "this machine is too small for the in-process LLM, so the small models answered",
    llm_unavailable: "the LLM is unavailable, so the small models answered",
    circuit_open: "the LLM failed repeatedly and is paused, so the small models answered",
    confident_small: "the small answer was confident enough; the LLM was not needed",
    low_confidence: "the small answer was not confident enough, so the LLM answered",
    llm_timeout: "the LLM took too long, so the small models answered",
    llm_error: "the LLM failed, so the small models answered",
  };
  /** Who checked an answer (`grounded.method`), in words. */
  const CHECKED = {
    checker: "the groundedness checker",
    reader: "only the reader's own score (no checker)",
    unchecked: "nobody (no checker configured)",
    extractive: "nobody (a quote, not checked)",
  };
  /** Below this confidence an answer is shown as low-confidence. */
  const LOW_CONFIDENCE = 0.5;

  function renderAnswer(data) {
    const text = typeof data.answer === "string" ? data.answer : "";
    const citations = new Map((data.citations || []).map((c) => [Number(c.n), c]));
    const grounded = data.grounded || {};
    const sentences = (grounded.unsupported || []).map(sentenceOf).filter(Boolean);
    const { ranges, unfound } = unsupportedRanges(text, sentences);

    const parts = [];
    let pos = 0;
    for (const [start, end] of ranges) {
      parts.push(...withCitations(text.slice(pos, start), citations));
      parts.push(
        el(
          "mark",
          { class: "unsupported" },
          ...withCitations(text.slice(start, end), citations),
          el("span", { class: "visually-hidden", text: " (not supported by the sources)" }),
        ),
      );
      pos = end;
    }
    parts.push(...withCitations(text.slice(pos), citations));
    answerText.replaceChildren(...parts);
    if (!text) answerText.append(el("span", { class: "muted", text: "(no answer)" }));

    $("answer-legend").hidden = ranges.length === 0;
    const unfoundBox = $("answer-unfound");
    unfoundBox.querySelector("ul").replaceChildren(...unfound.map((s) => el("li", { text: s })));
    unfoundBox.hidden = unfound.length === 0;

    const facts = [
      ["served by", data.served_by],
      ["confidence", typeof data.confidence === "number" ? data.confidence.toFixed(2) : null],
      ["grounded", typeof grounded.score === "number" ? grounded.score.toFixed(2) : null],
      [
        "checked by",
        grounded.method && grounded.method !== "none"
          ? (CHECKED[grounded.method] || grounded.method) +
            (grounded.checker && grounded.method === "checker" ? ` (${grounded.checker})` : "")
          : null,
      ],
      ["model", data.model],
      ["index", data.index ? `${data.index} v${data.version}` : null],
      ["cached", data.cached === undefined ? null : data.cached ? "yes" : "no"],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    const factsNode = $("answer-facts");
    factsNode.replaceChildren(
      ...facts.map(([k, v]) =>
        el("div", { "data-fact": k }, el("dt", { text: k }), el("dd", { text: v })),
      ),
    );
    factsNode.hidden = facts.length === 0;

    const badges = $("answer-badges");
    const found = !(data.extract && data.extract.found === false);
    const low = found && typeof data.confidence === "number" && data.confidence < LOW_CONFIDENCE;
    const unchecked = found && ["unchecked", "extractive"].includes(grounded.method);
    const readerOnly = found && grounded.method === "reader";
    badges.replaceChildren(
      ...[
        !found ? ["no-answer", "no answer found"] : null,
        low ? ["low", `low confidence (${data.confidence.toFixed(2)})`] : null,
        unchecked ? ["unchecked", "not checked"] : null,
        readerOnly ? ["unchecked", "checked by the reader only"] : null,
        found && grounded.method === "checker" && typeof grounded.score === "number"
          ? grounded.score >= 0.5
            ? ["checked", "checked"]
            : ["low", "checker: not supported"]
          : null,
      ]
        .filter(Boolean)
        .map(([cls, text]) => el("span", { class: `badge badge-${cls}`, text })),
    );
    badges.hidden = badges.childNodes.length === 0;

    const reason = $("answer-reason");
    reason.replaceChildren();
    if (data.reason) {
      const words = REASONS[data.reason];
      reason.append(
        el("strong", { text: "Why: " }),
        words ? `${words} (${data.reason})` : data.reason,
      );
    }
    if (data.extract && data.extract.why) {
      reason.append(" · ", el("strong", { text: "Answer: " }), data.extract.why);
    }
    if (grounded.reason) {
      reason.append(data.reason ? " · " : "", el("strong", { text: "Grounding: " }), grounded.reason);
    }
    if (Array.isArray(data.invalid_citations) && data.invalid_citations.length) {
      const removed = data.invalid_citations.map((n) => `[${n}]`).join(" ");
      reason.append(" · ", el("strong", { text: "Removed citations: " }), removed);
    }
    reason.hidden = !reason.childNodes.length;

    const list = $("answer-citations");
    list.replaceChildren(
      ...[...citations.values()].map((c) => {
        const button = citeButton(c, "", "citation");
        button.append(
          el("span", { class: "n", text: `[${c.n}]` }),
          el("span", { class: "source", text: basename(c.source) }),
          el("span", { class: "snippet", text: c.text }),
        );
        return el("li", {}, button);
      }),
    );
    $("answer-citations-box").hidden = citations.size === 0;

    renderTimings($("answer-timings"), data.timings_ms, true);
    $("answer-timings-box").hidden = !data.timings_ms;

    const total = data.timings_ms && data.timings_ms.total;
    $("answer-status").textContent = total !== undefined ? `Done in ${fmtMs(total)}` : "Done";
    $("answer").dataset.state = "done";
  }

  // -- the passage panel ------------------------------------------------------------------------------
  function openPassage(citation, trigger) {
    $("passage-title").textContent = `Passage [${citation.n}]`;
    $("passage-source").textContent = citation.source;
    $("passage-doc").textContent = citation.doc_id;
    $("passage-chunk").textContent = citation.chunk_id;
    $("passage-text").textContent = citation.text;
    for (const b of document.querySelectorAll("[data-cite]")) {
      b.setAttribute("aria-expanded", String(Number(b.dataset.cite) === Number(citation.n)));
    }
    state.openCitation = citation.n;
    state.lastTrigger = trigger;
    const drawer = $("passage");
    drawer.dataset.cite = citation.n;
    drawer.hidden = false;
    $("layout").classList.add("with-drawer");
    drawer.focus();
  }

  function closePassage() {
    const drawer = $("passage");
    if (drawer.hidden) return;
    drawer.hidden = true;
    $("layout").classList.remove("with-drawer");
    for (const b of document.querySelectorAll("[data-cite]")) b.setAttribute("aria-expanded", "false");
    state.openCitation = null;
    if (state.lastTrigger && document.contains(state.lastTrigger)) state.lastTrigger.focus();
  }

  $("passage-close").addEventListener("click", closePassage);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !keyDialog.open) closePassage();
  });

  // Pure pieces, for the browser tests (they hold no key and reach no data).
  window.TandemPlayground = Object.freeze({ sseEvents, parseEventBlock, renderAnswer });

  // -- start ------------------------------------------------------------------------------------------
  const savedTab = readStore(TAB_STORE);
  if (savedTab && $(savedTab)) selectTab($(savedTab), false);
  setKeyStatus(state.key ? "Checking key…" : "Connecting…", "unknown");
  loadIndexes();
})();
