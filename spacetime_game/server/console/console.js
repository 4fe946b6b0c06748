/* spacetime-game dev console: the page's script (plain ES2020, no modules, no libraries).
 *
 * It talks to the dev server through the JSON API under /_console/api/ and the WebSocket /_console/ws
 * (docs/console.md). Every piece of data goes into the DOM as text (textContent, never innerHTML).
 */
(() => {
  "use strict";

  // ----- constants ------------------------------------------------------------------------------------------
  const PAGE_SIZE = 100;
  const MAX_CALL_ROWS = 500;
  const MAX_LOG_LINES = 2000;
  const PLOT_SECONDS = 120;
  const SEEN_KEEP = 3000;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const LEVEL_GROUPS = ["DEBUG", "INFO", "WARNING", "ERROR"];
  const INT_RANGES = {
    u8: [0n, 255n], u16: [0n, 65535n], u32: [0n, 4294967295n], u64: [0n, 2n ** 64n - 1n],
    u128: [0n, 2n ** 128n - 1n], u256: [0n, 2n ** 256n - 1n],
    i8: [-128n, 127n], i16: [-32768n, 32767n], i32: [-(2n ** 31n), 2n ** 31n - 1n],
    i64: [-(2n ** 63n), 2n ** 63n - 1n], i128: [-(2n ** 127n), 2n ** 127n - 1n],
    i256: [-(2n ** 255n), 2n ** 255n - 1n],
  };
  const SMALL_INTS = new Set(["u8", "u16", "u32", "i8", "i16", "i32"]);
  const HEX_TYPES = { Identity: 64, ConnectionId: 32, Uuid: 32 };
  const AUTH_TEXT = "not authorised: open the console link printed by spacetime-game serve";
  const NUMBER = new Intl.NumberFormat("en-US");

  // ----- small helpers --------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  /** An element; ``props``: className, text, title, attrs {}, data {}; children: nodes or strings (as text). */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      if (props.className) node.className = props.className;
      if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
      if (props.title) node.title = props.title;
      if (props.attrs) for (const [k, v] of Object.entries(props.attrs)) node.setAttribute(k, v);
      if (props.data) for (const [k, v] of Object.entries(props.data)) node.dataset[k] = v;
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function svgLock() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 10 10");
    svg.setAttribute("aria-hidden", "true");
    const body = document.createElementNS(ns, "rect");
    body.setAttribute("x", "1.5"); body.setAttribute("y", "4.5");
    body.setAttribute("width", "7"); body.setAttribute("height", "5"); body.setAttribute("rx", "1");
    body.setAttribute("fill", "currentColor");
    const shackle = document.createElementNS(ns, "path");
    shackle.setAttribute("d", "M3 4.5V3a2 2 0 0 1 4 0v1.5");
    shackle.setAttribute("fill", "none"); shackle.setAttribute("stroke", "currentColor");
    shackle.setAttribute("stroke-width", "1.2");
    svg.append(body, shackle);
    return svg;
  }

  function tableBadges(t, withText) {
    const out = [];
    if (t.public === false) {
      const b = h("span", { className: "badge badge-lock", title: "private: only the owner (and the module) can see it" }, svgLock());
      if (withText) b.append("private");
      out.push(b);
    }
    if (t.event) out.push(h("span", { className: "badge badge-event", text: "event", title: "event table: rows are published, not kept" }));
    if (t.scheduled) out.push(h("span", { className: "badge badge-scheduled", text: "scheduled", title: "schedules the reducer " + t.scheduled }));
    return out;
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function clockTime(seconds) {
    const d = new Date(seconds * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function fullTime(seconds) {
    const d = new Date(seconds * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clockTime(seconds)}`;
  }
  function fmtMs(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "–";
    if (ms < 10) return ms.toFixed(2) + " ms";
    if (ms < 100) return ms.toFixed(1) + " ms";
    return NUMBER.format(Math.round(ms)) + " ms";
  }
  function fmtBytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "–";
    if (n < 1024) return n + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v < 10 ? v.toFixed(1) : Math.round(v)) + " " + units[i];
  }
  function fmtDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${pad(s % 60)} s`;
    const hrs = Math.floor(m / 60);
    if (hrs < 24) return `${hrs} h ${pad(m % 60)} min`;
    return `${Math.floor(hrs / 24)} d ${pad(hrs % 24)} h`;
  }
  const fmtInt = (n) => (typeof n === "number" ? NUMBER.format(n) : "–");
  const shortHex = (hex) => (typeof hex === "string" ? hex.slice(0, 8) : "–");

  function compactJson(value) {
    try {
      const text = JSON.stringify(value);
      return text === undefined ? "" : text;
    } catch (e) {
      return String(value);
    }
  }

  /** A number as text. A fraction that a 32-bit float holds exactly (an f32 widened to f64 on the way) is
   *  written with the fewest digits that still read back as that f32: 0.1 rather than 0.10000000149011612. */
  function fmtNumber(v) {
    if (Number.isInteger(v) || !Number.isFinite(v) || Math.fround(v) !== v) return String(v);
    for (let p = 1; p <= 9; p++) {
      const short = Number(v.toPrecision(p));
      if (Math.fround(short) === v) return String(short);
    }
    return String(v);
  }

  /** An object key as a person reads it: bare when it is a name, quoted otherwise. */
  const jsonKey = (k) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : JSON.stringify(k));

  /** JSON on one line with a space after commas and colons: easier to read than the tightest form. */
  function readableJson(value, depth) {
    depth = depth || 0;
    if (depth > 20) return "…";
    if (Array.isArray(value)) return "[" + value.map((v) => readableJson(v, depth + 1)).join(", ") + "]";
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).map((k) => jsonKey(k) + ": " + readableJson(value[k], depth + 1)).join(", ") + "}";
    }
    if (typeof value === "number") return fmtNumber(value);
    const text = JSON.stringify(value);
    return text === undefined ? "null" : text;
  }

  /** Set a node's text only when it differs (no needless layout work). */
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function isNumericType(type) {
    return typeof type === "string" && /^[uif](8|16|32|64|128|256)$/.test(type);
  }

  // ----- state ----------------------------------------------------------------------------------------------
  const state = {
    schema: null,
    schemaText: "",
    tables: new Map(),
    counts: Object.create(null),
    tab: "table",
    view: { table: null, offset: 0 },
    total: 0,
    pageColumns: null,
    colMinWidths: [],
    fetchToken: 0,
    sentView: undefined,
    ws: null,
    wsOpen: false,
    attempt: 0,
    retryTimer: 0,
    retryAt: 0,
    countdownTimer: 0,
    clockOffset: 0,
    history: [],
    lastStats: null,
    callsPaused: false,
    callsBuffer: [],
    seenCalls: new Set(),
    seenCallsQueue: [],
    seenLogs: new Set(),
    seenLogsQueue: [],
    logsStick: true,
    logsUnseen: 0,
    clients: [],
    clientRows: new Map(),
    authFailed: false,
  };

  // ----- the banner -----------------------------------------------------------------------------------------
  function showBanner(content, kind) {
    const banner = $("banner");
    if (Array.isArray(content)) banner.replaceChildren(...content);
    else banner.replaceChildren(content);
    banner.dataset.kind = kind || "error";
    banner.hidden = false;
  }
  function hideBanner(kind) {
    const banner = $("banner");
    if (!kind || banner.dataset.kind === kind) banner.hidden = true;
  }
  function authFailed() {
    state.authFailed = true;
    showBanner([
      "not authorised: open the console link printed by ",
      h("code", { text: "spacetime-game serve" }),
      " (or dev). The link signs this browser in; it changes each time the server starts.",
    ], "auth");
    setStatus("denied", "not authorised", "");
  }

  // ----- the API --------------------------------------------------------------------------------------------
  class AuthError extends Error {}

  /** fetch JSON; resolves to {ok, status, data}; throws AuthError on 401/403 (after saying so). */
  async function api(path, body) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 401 || resp.status === 403) {
      authFailed();
      throw new AuthError(AUTH_TEXT);
    }
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { error: text.slice(0, 500) }; }
    }
    if (state.authFailed) {
      state.authFailed = false;
      hideBanner("auth");
    }
    return { ok: resp.ok, status: resp.status, data };
  }

  function errorText(res) {
    if (res && res.data && typeof res.data.error === "string") return res.data.error;
    return `HTTP ${res ? res.status : "?"}`;
  }

  // ----- schema & sidebar ----------------------------------------------------------------------------------
  async function loadSchema() {
    const res = await api("/_console/api/schema");
    if (!res.ok || !res.data) throw new Error("schema: " + errorText(res));
    const text = JSON.stringify(res.data);
    if (text === state.schemaText) return false;
    state.schemaText = text;
    applySchema(res.data);
    return true;
  }

  function applySchema(schema) {
    state.schema = schema;
    state.tables = new Map((schema.tables || []).map((t) => [t.name, t]));
    for (const t of schema.tables || []) {
      if (typeof t.rows === "number" && !(t.name in state.counts)) state.counts[t.name] = t.rows;
    }
    const name = schema.database || "database";
    setText($("db-name"), name);
    $("db-name").title = schema.owner ? `owner ${schema.owner}` : "";
    document.title = `${name} · dev console`;
    renderTableList();
    renderReducerSelect();
    if (state.view.table && !state.tables.has(state.view.table)) {
      state.view.table = null;
      state.pageColumns = null;
    }
    if (state.view.table) {
      showTable(state.view.table, state.view.offset, true);
    } else {
      renderTableEmpty();
    }
  }

  function renderTableList() {
    const list = $("table-list");
    const tables = state.schema ? state.schema.tables || [] : [];
    const items = tables.map((t) => {
      const count = state.counts[t.name];
      const li = h(
        "li",
        { data: { table: t.name }, attrs: { tabindex: "0", role: "button" }, title: t.public === false ? `${t.name} (private)` : t.name },
        h("span", { className: "tname", text: t.name }),
        h("span", { className: "badges" }, ...tableBadges(t, false)),
        h("span", { className: "count", text: typeof count === "number" ? NUMBER.format(count) : "" }),
      );
      if (t.name === state.view.table) li.classList.add("active");
      return li;
    });
    if (!items.length) items.push(h("li", { className: "empty-note", text: "no tables" }));
    list.replaceChildren(...items);
    setText($("table-count"), tables.length ? String(tables.length) : "");
    applyTableFilter();
  }

  function applyTableFilter() {
    const q = $("table-filter").value.trim().toLowerCase();
    for (const li of $("table-list").children) {
      if (!li.dataset.table) continue;
      li.hidden = q !== "" && !li.dataset.table.toLowerCase().includes(q);
    }
  }

  function applyCounts(counts) {
    const list = $("table-list");
    for (const [name, n] of Object.entries(counts)) {
      state.counts[name] = n;
      const li = list.querySelector(`li[data-table="${CSS.escape(name)}"] .count`);
      if (li) setText(li, NUMBER.format(n));
    }
  }

  // ----- tabs -------------------------------------------------------------------------------------------------
  function selectTab(tab) {
    state.tab = tab;
    document.querySelector(".app").dataset.tab = tab;
    for (const btn of document.querySelectorAll(".tab")) {
      const on = btn.dataset.tab === tab;
      btn.setAttribute("aria-selected", on ? "true" : "false");
      btn.tabIndex = on ? 0 : -1;
    }
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== "panel-" + tab;
    if (tab === "logs") {
      $("badge-logs").hidden = true;
      if (state.logsStick) scrollLogsToEnd();
    }
    if (tab === "calls") $("badge-calls").hidden = true;
    if (tab === "clients") renderClientDurations();
    sendView();
    saveLocation();
  }

  // ----- location (so a reload keeps the view) ---------------------------------------------------------
  function saveLocation() {
    const params = new URLSearchParams();
    params.set("tab", state.tab);
    if (state.view.table) params.set("table", state.view.table);
    if (state.view.offset) params.set("offset", String(state.view.offset));
    const hash = "#" + params.toString();
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }
  function readLocation() {
    const params = new URLSearchParams(location.hash.slice(1));
    const tab = params.get("tab");
    const offset = parseInt(params.get("offset") || "0", 10);
    return {
      tab: ["table", "calls", "clients", "logs", "sql", "call"].includes(tab) ? tab : "table",
      table: params.get("table"),
      offset: Number.isFinite(offset) && offset > 0 ? offset - (offset % PAGE_SIZE) : 0,
    };
  }

  // ----- the table view ------------------------------------------------------------------------------------
  function currentView() {
    if (state.tab !== "table" || !state.view.table) return null;
    return { table: state.view.table, offset: state.view.offset, limit: PAGE_SIZE };
  }

  function sendView(force) {
    const view = currentView();
    const text = JSON.stringify({ view });
    if (!force && text === state.sentView) return;
    if (state.ws && state.wsOpen) {
      try {
        state.ws.send(text);
        state.sentView = text;
      } catch (e) {
        state.sentView = undefined;
      }
    }
  }

  function renderTableEmpty() {
    setText($("table-title"), "No table");
    $("table-badges").replaceChildren();
    $("table-head").replaceChildren();
    $("table-body").replaceChildren();
    $("table-empty").hidden = false;
    setText($("table-empty"), state.tables.size ? "Pick a table in the list to see its rows." : "This module has no tables.");
    setText($("page-info"), "–");
    for (const id of ["page-first", "page-prev", "page-next", "page-last", "table-sql"]) $(id).disabled = true;
  }

  /** Show ``name`` at ``offset``: header at once, rows from the API, then live from the socket. */
  function showTable(name, offset, keepRows) {
    const t = state.tables.get(name);
    if (!t) return;
    const changedTable = name !== state.view.table || !keepRows || state.pageColumns === null;
    state.view.table = name;
    state.view.offset = Math.max(0, offset || 0);
    for (const li of $("table-list").children) li.classList.toggle("active", li.dataset.table === name);
    setText($("table-title"), name);
    $("table-badges").replaceChildren(...tableBadges(t, true));
    $("table-sql").disabled = false;
    if (changedTable) {
      state.colMinWidths = [];
      renderHead(t, t.columns.map((c) => c.name));
      $("table-body").replaceChildren();
      $("table-empty").hidden = true;
      $("table-view").scrollTop = 0;
      const known = state.counts[name];
      updatePager(typeof known === "number" ? known : 0, null);
    }
    sendView();
    saveLocation();
    fetchPage();
  }

  function goToPage(offset) {
    if (!state.view.table) return;
    const last = Math.max(0, Math.floor((state.total - 1) / PAGE_SIZE) * PAGE_SIZE);
    const next = Math.min(Math.max(0, offset), last);
    if (next === state.view.offset) return;
    state.view.offset = next;
    $("table-view").scrollTop = 0;
    sendView();
    saveLocation();
    fetchPage();
  }

  async function fetchPage() {
    const { table, offset } = state.view;
    if (!table) return;
    const token = ++state.fetchToken;
    let res;
    try {
      res = await api(`/_console/api/table/${encodeURIComponent(table)}?offset=${offset}&limit=${PAGE_SIZE}`);
    } catch (e) {
      if (!(e instanceof AuthError) && token === state.fetchToken) showTableError("could not load the table: " + e.message);
      return;
    }
    if (token !== state.fetchToken || table !== state.view.table || offset !== state.view.offset) return;
    if (!res.ok || !res.data) {
      showTableError(errorText(res));
      return;
    }
    renderPage(res.data, []);
  }

  function showTableError(text) {
    $("table-body").replaceChildren();
    const empty = $("table-empty");
    empty.replaceChildren(h("div", { className: "error-box", text }));
    empty.hidden = false;
  }

  function applyPage(page) {
    if (!page || page.table !== state.view.table || page.offset !== state.view.offset) return;
    state.fetchToken++; // an API answer still under way is older than this
    renderPage(page, Array.isArray(page.changed) ? page.changed : []);
  }

  function renderHead(t, columns) {
    const types = new Map(t.columns.map((c) => [c.name, c.type]));
    const unique = new Set(t.unique || []);
    const cells = [h("th", { className: "rownum", text: "#" })];
    columns.forEach((name, i) => {
      const nameLine = h("div", { className: "col-name" }, name);
      if (t.primary_key === name) {
        nameLine.append(h("span", { className: "key key-pk", text: "PK", title: "primary key" }));
      } else if (unique.has(name)) {
        nameLine.append(h("span", { className: "key key-uq", text: "UQ", title: "unique" }));
      }
      const th = h("th", { className: "col" }, nameLine,
        h("div", { className: "col-type", text: types.get(name) || "" }));
      if (isNumericType(types.get(name))) th.classList.add("c-num");
      cells.push(th);
    });
    cells.push(h("th", { className: "fill" }));
    $("table-head").replaceChildren(...cells);
    state.pageColumns = columns.join("\u0000");
  }

  function cellValue(td, value, type) {
    let text;
    let cls;
    if (value === null || value === undefined) {
      text = "null"; cls = "v-null";
    } else if (typeof value === "boolean") {
      text = String(value); cls = value ? "v-true" : "v-false";
    } else if (typeof value === "number") {
      text = fmtNumber(value); cls = "v-num";
    } else if (typeof value === "string") {
      text = value;
      if (isNumericType(type)) cls = "v-num";
      else if (type in HEX_TYPES) cls = "v-hex";
      else if (type === "Timestamp") cls = "v-time";
      else cls = "v-str";
    } else {
      text = readableJson(value); cls = "v-json";
    }
    if (td.textContent !== text) {
      td.textContent = text;
      td.title = text.length > 20 ? text : "";
    }
    if (td.className !== cls) td.className = cls;
  }

  function renderPage(page, changed) {
    const t = state.tables.get(page.table);
    if (!t) return;
    const columns = Array.isArray(page.columns) ? page.columns : t.columns.map((c) => c.name);
    if (columns.join("\u0000") !== state.pageColumns) renderHead(t, columns);
    const types = columns.map((name) => {
      const col = t.columns.find((c) => c.name === name);
      return col ? col.type : "";
    });
    const rows = Array.isArray(page.rows) ? page.rows : [];
    const body = $("table-body");
    const offset = page.offset || 0;
    const trs = body.children;
    for (let i = 0; i < rows.length; i++) {
      let tr = trs[i];
      const width = columns.length + 2;
      if (!tr || tr.children.length !== width) {
        const fresh = h("tr");
        for (let c = 0; c < width; c++) fresh.append(h("td"));
        fresh.firstChild.className = "rownum";
        fresh.lastChild.className = "fill";
        if (tr) body.replaceChild(fresh, tr); else body.append(fresh);
        tr = fresh;
      }
      const rowIndex = String(offset + i);
      if (tr.dataset.row !== rowIndex) {
        tr.dataset.row = rowIndex;
        tr.firstChild.textContent = String(offset + i + 1);
      }
      const row = rows[i];
      for (let c = 0; c < columns.length; c++) {
        cellValue(tr.children[c + 1], Array.isArray(row) ? row[c] : undefined, types[c]);
      }
    }
    while (trs.length > rows.length) body.lastChild.remove();
    const total = typeof page.total === "number" ? page.total : rows.length;
    $("table-empty").hidden = rows.length > 0;
    if (!rows.length) setText($("table-empty"), total ? "No rows on this page." : "This table is empty.");
    updatePager(total, rows.length, typeof page.order === "string" ? page.order : null);
    if (typeof page.total === "number") applyCounts({ [page.table]: page.total });
    lockColumnWidths();
    if (changed.length) flashRows(changed);
    // rows were deleted under us: go back to the last page that has rows
    if (!rows.length && total > 0 && offset >= total) goToPage(Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
  }

  /** Columns may grow but never shrink while the same table is shown: no jumping as values change. */
  function lockColumnWidths() {
    const ths = $("table-head").children;
    const widths = [];
    for (let i = 0; i < ths.length; i++) widths.push(ths[i].getBoundingClientRect().width);
    for (let i = 0; i < ths.length; i++) {
      if (ths[i].classList.contains("fill")) continue;
      const w = Math.ceil(widths[i]);
      if (!(state.colMinWidths[i] >= w)) {
        state.colMinWidths[i] = w;
        ths[i].style.minWidth = w + "px";
      }
    }
  }

  function flashRows(indexes) {
    const trs = $("table-body").children;
    const hit = [];
    for (const i of indexes) {
      const tr = trs[i];
      if (tr) { tr.classList.remove("flash"); hit.push(tr); }
    }
    if (!hit.length) return;
    void $("table-body").offsetWidth; // restart the animation of rows that were still glowing
    for (const tr of hit) tr.classList.add("flash");
  }

  function updatePager(total, shown, order) {
    state.total = total;
    const offset = state.view.offset;
    const info = $("page-info");
    if (shown === null) {
      info.replaceChildren(h("b", { text: NUMBER.format(total) }), total === 1 ? " row" : " rows");
    } else if (!total) {
      info.replaceChildren("no rows");
    } else {
      const a = Math.min(offset + 1, total);
      const b = Math.min(offset + Math.max(shown, 0), total);
      info.replaceChildren("rows ", h("b", { text: `${NUMBER.format(a)}–${NUMBER.format(Math.max(a, b))}` }),
        " of ", h("b", { text: NUMBER.format(total) }));
    }
    if (order && total) info.append(` · by ${order}`);
    $("page-first").disabled = $("page-prev").disabled = offset <= 0;
    $("page-next").disabled = $("page-last").disabled = offset + PAGE_SIZE >= total;
  }

  // ----- reducer calls ----------------------------------------------------------------------------------
  function remember(set, queue, key) {
    if (set.has(key)) return false;
    set.add(key);
    queue.push(key);
    if (queue.length > SEEN_KEEP) set.delete(queue.shift());
    return true;
  }

  function addCalls(calls) {
    const fresh = [];
    for (const c of calls) {
      if (!c || typeof c !== "object") continue;
      const key = [c.at, c.reducer, c.caller, c.connection, c.duration_ms, c.status, c.rows_changed].join("|");
      if (remember(state.seenCalls, state.seenCallsQueue, key)) fresh.push(c);
    }
    if (!fresh.length) return;
    addActivityCalls(fresh);
    if (state.tab !== "calls" && fresh.some((c) => c.status !== "committed")) $("badge-calls").hidden = false;
    if (state.callsPaused) {
      state.callsBuffer.push(...fresh);
      if (state.callsBuffer.length > MAX_CALL_ROWS) state.callsBuffer.splice(0, state.callsBuffer.length - MAX_CALL_ROWS);
      updatePauseButton();
      return;
    }
    insertCalls(fresh, true);
  }

  function insertCalls(calls, animate) {
    const body = $("calls-body");
    const frag = document.createDocumentFragment();
    const filter = callFilter();
    const start = Math.max(0, calls.length - MAX_CALL_ROWS);
    for (let i = calls.length - 1; i >= start; i--) {
      const tr = callRow(calls[i]);
      tr.hidden = !filter(tr);
      if (animate && calls.length <= 8) tr.classList.add("fresh"); // a flood would only make the feed flicker
      frag.append(tr);
    }
    body.prepend(frag);
    while (body.children.length > MAX_CALL_ROWS) body.lastChild.remove();
    updateCallsInfo();
  }

  // ----- the activity column -------------------------------------------------------------------------------
  const ACT_CALLS = 40;

  function addActivityCalls(calls) {
    const list = $("act-calls");
    const frag = document.createDocumentFragment();
    const animate = calls.length <= 8;
    for (let i = calls.length - 1; i >= Math.max(0, calls.length - ACT_CALLS); i--) {
      const c = calls[i];
      const status = ["committed", "failed", "internal"].includes(c.status) ? c.status : "internal";
      const name = h("span", { className: "act-name", text: String(c.reducer || "?") });
      if (c.scheduled) name.append(h("small", { text: "scheduled" }));
      const label = status === "internal" ? "internal error" : status;
      const title = `${clockTime(typeof c.at === "number" ? c.at : Date.now() / 1000)} · ${c.reducer} · ${label}` +
        (c.message ? `: ${c.message}` : "") + ` · caller ${shortHex(c.caller)}`;
      const li = h("li", { className: "act-call" + (animate ? " fresh" : ""), title, data: { status } },
        h("span", { className: "act-dot", attrs: { "aria-label": label } }), name,
        h("span", { className: "act-ms", text: fmtMs(c.duration_ms) }));
      frag.append(li);
    }
    list.prepend(frag);
    while (list.children.length > ACT_CALLS) list.lastChild.remove();
    $("act-calls-empty").hidden = list.children.length > 0;
  }

  function renderActivityClients(clients) {
    const list = $("act-clients");
    const items = [];
    const now = serverNow();
    for (const c of clients) {
      if (!c || typeof c !== "object") continue;
      const owner = state.schema && c.identity === state.schema.owner;
      const top = h("div", { className: "act-client-top" },
        h("span", { className: "act-id", text: shortHex(c.identity) + (owner ? " · owner" : "") }),
        h("span", { className: "act-age", text: typeof c.connected_at === "number" ? fmtDuration(now - c.connected_at) : "" }));
      const bar = h("div", { className: "act-client-bar" },
        h("span", {}, h("b", { text: fmtInt(c.calls) }), " calls"),
        h("span", {}, "rtt ", h("b", { text: typeof c.round_trip_ms === "number" ? fmtMs(c.round_trip_ms) : "–" })),
        h("span", {}, "out ", h("b", { text: fmtBytes(c.bytes_out) })));
      items.push(h("li", { className: "act-client", title: `identity ${c.identity}\nconnection ${c.connection}` }, top, bar));
    }
    list.replaceChildren(...items);
    $("act-clients-empty").hidden = items.length > 0;
    setText($("act-clients-info"), items.length ? String(items.length) : "");
  }

  function setActivity(shown) {
    $("act-toggle").setAttribute("aria-pressed", shown ? "true" : "false");
    document.querySelector(".app").classList.toggle("no-activity", !shown);
    try { localStorage.setItem("console.activity", shown ? "1" : "0"); } catch (e) { /* storage may be off */ }
  }

  function callRow(c) {
    const status = ["committed", "failed", "internal"].includes(c.status) ? c.status : "internal";
    const reducer = String(c.reducer || "?");
    const tr = h("tr", { data: { reducer, status } });
    const at = typeof c.at === "number" ? c.at : Date.now() / 1000;
    tr.append(h("td", { className: "c-time", text: clockTime(at), title: fullTime(at) }));

    const redBox = h("div", { className: "cell-flex" }, h("span", { className: "cell-main", text: reducer }));
    const def = state.schema && (state.schema.reducers || []).find((r) => r.name === reducer);
    if (c.scheduled) redBox.append(h("span", { className: "badge badge-scheduled", text: "scheduled", title: "run by the scheduler" }));
    if (def && def.lifecycle) redBox.append(h("span", { className: "badge badge-lifecycle", text: String(def.lifecycle) }));
    tr.append(h("td", { className: "c-reducer", title: reducer }, redBox));

    const callerBox = h("div", { className: "cell-flex" }, h("span", { className: "cell-main", text: shortHex(c.caller) }));
    if (state.schema && c.caller && c.caller === state.schema.owner) {
      callerBox.append(h("span", { className: "badge badge-owner", text: "owner" }));
    }
    const title = `identity ${c.caller || "?"}` + (c.connection ? `\nconnection ${c.connection}` : "");
    tr.append(h("td", { className: "c-caller", title }, callerBox));

    let argsText = "";
    let argsTitle = "";
    if (c.args !== null && c.args !== undefined) {
      argsText = readableJson(c.args);
      if (argsText === "{}") argsText = "";
      else if (argsText.startsWith("{") && c.args && !Array.isArray(c.args)) argsText = argsText.slice(1, -1);
      try { argsTitle = JSON.stringify(c.args, null, 2); } catch (e) { argsTitle = argsText; }
    }
    const args = h("td", { className: "c-args" + (argsText ? "" : " dim"), text: argsText || "–" });
    if (argsText.length > 30) args.title = argsTitle;
    tr.append(args);

    const label = status === "internal" ? "internal error" : status;
    const outcome = h("span", { className: "outcome" }, h("span", { className: "pill pill-" + status, text: label }));
    if (c.message) outcome.append(h("span", { className: "outcome-msg", text: String(c.message) }));
    const oc = h("td", { className: "c-outcome" }, outcome);
    if (c.message) oc.title = String(c.message);
    tr.append(oc);

    tr.append(h("td", { className: "c-num", text: fmtMs(c.duration_ms) }));
    tr.append(h("td", { className: "c-num" + (c.rows_changed ? "" : " dim"), text: typeof c.rows_changed === "number" ? NUMBER.format(c.rows_changed) : "–" }));
    return tr;
  }

  function callFilter() {
    const q = $("calls-filter").value.trim().toLowerCase();
    const failuresOnly = $("calls-errors").checked;
    return (tr) => (!q || tr.dataset.reducer.toLowerCase().includes(q)) && (!failuresOnly || tr.dataset.status !== "committed");
  }

  function applyCallFilter() {
    const filter = callFilter();
    for (const tr of $("calls-body").children) tr.hidden = !filter(tr);
    updateCallsInfo();
  }

  function updateCallsInfo() {
    const rows = $("calls-body").children;
    let shown = 0;
    for (const tr of rows) if (!tr.hidden) shown++;
    $("calls-empty").hidden = rows.length > 0;
    const parts = [];
    parts.push(shown === rows.length ? `${NUMBER.format(rows.length)} calls` : `${NUMBER.format(shown)} of ${NUMBER.format(rows.length)} calls`);
    if (state.lastStats && typeof state.lastStats.calls_per_s === "number") parts.push(`${state.lastStats.calls_per_s.toFixed(1)} calls/s`);
    setText($("calls-info"), parts.join(" · "));
  }

  function updatePauseButton() {
    const btn = $("calls-pause");
    btn.setAttribute("aria-pressed", state.callsPaused ? "true" : "false");
    const n = state.callsBuffer.length;
    setText(btn, state.callsPaused ? (n ? `Resume (${NUMBER.format(n)} new)` : "Resume") : "Pause");
  }

  // ----- clients ----------------------------------------------------------------------------------------
  function serverNow() {
    return Date.now() / 1000 + state.clockOffset;
  }

  function renderClients(clients) {
    state.clients = clients;
    renderActivityClients(clients);
    const body = $("clients-body");
    const keep = new Set();
    const ordered = [];
    for (const c of clients) {
      if (!c || typeof c !== "object") continue;
      const key = String(c.connection || c.identity);
      keep.add(key);
      let row = state.clientRows.get(key);
      if (!row) {
        row = clientRow(c);
        state.clientRows.set(key, row);
      }
      updateClientRow(row, c);
      ordered.push(row.tr);
    }
    for (const [key, row] of state.clientRows) {
      if (!keep.has(key)) { row.tr.remove(); state.clientRows.delete(key); }
    }
    const current = body.children;
    let same = current.length === ordered.length;
    for (let i = 0; same && i < ordered.length; i++) same = current[i] === ordered[i];
    if (!same) body.append(...ordered);
    $("clients-empty").hidden = ordered.length > 0;
    setText($("badge-clients"), String(ordered.length));
    setText($("clients-info"), ordered.length ? `${ordered.length} connected client${ordered.length === 1 ? "" : "s"}` : "No clients connected.");
  }

  function clientRow(c) {
    const cells = {};
    const tr = h("tr", { data: { identity: String(c.identity || "") } });
    const add = (name, cls) => {
      const td = h("td", { className: cls || "" });
      cells[name] = td;
      tr.append(td);
      return td;
    };
    add("identity").title = "identity " + (c.identity || "?");
    setText(cells.identity, shortHex(c.identity));
    add("connection").title = "connection " + (c.connection || "?");
    setText(cells.connection, shortHex(c.connection));
    add("age", "c-num");
    add("subs");
    for (const name of ["min", "mout", "bin", "bout", "queue", "calls", "rtt"]) add(name, "c-num");
    return { tr, cells, subsText: null, connectedAt: c.connected_at };
  }

  function updateClientRow(row, c) {
    const k = row.cells;
    row.connectedAt = c.connected_at;
    setText(k.age, typeof c.connected_at === "number" ? fmtDuration(serverNow() - c.connected_at) : "–");
    if (typeof c.connected_at === "number") k.age.title = "since " + fullTime(c.connected_at);
    const subs = Array.isArray(c.subscriptions) ? c.subscriptions.map(String) : [];
    const subsText = subs.join("\n");
    if (subsText !== row.subsText) {
      row.subsText = subsText;
      const box = h("div", { className: "subs" });
      if (!subs.length) box.append(h("span", { className: "sub-more", text: "none" }));
      const shown = subs.length > 3 ? 2 : subs.length;
      for (const q of subs.slice(0, shown)) box.append(h("span", { className: "sub", text: q, title: q }));
      if (subs.length > shown) box.append(h("span", { className: "sub-more", text: `+ ${subs.length - shown} more`, title: subsText }));
      k.subs.replaceChildren(box);
    }
    setText(k.min, fmtInt(c.messages_in));
    setText(k.mout, fmtInt(c.messages_out));
    setText(k.bin, fmtBytes(c.bytes_in));
    setText(k.bout, fmtBytes(c.bytes_out));
    setText(k.queue, fmtBytes(c.queue_bytes));
    k.queue.classList.toggle("dim", !c.queue_bytes);
    setText(k.calls, fmtInt(c.calls));
    setText(k.rtt, typeof c.round_trip_ms === "number" ? fmtMs(c.round_trip_ms) : "–");
    k.rtt.classList.toggle("dim", typeof c.round_trip_ms !== "number");
  }

  function renderClientDurations() {
    if (!state.wsOpen) return;
    const now = serverNow();
    for (const row of state.clientRows.values()) {
      if (typeof row.connectedAt === "number") setText(row.cells.age, fmtDuration(now - row.connectedAt));
    }
  }

  // ----- logs -----------------------------------------------------------------------------------------------
  function levelGroup(level) {
    const l = String(level || "").toUpperCase();
    if (l === "CRITICAL" || l === "FATAL" || l === "ERROR") return "ERROR";
    if (l === "WARNING" || l === "WARN") return "WARNING";
    if (l === "DEBUG" || l === "NOTSET") return "DEBUG";
    return "INFO";
  }

  function logsAtBottom() {
    const box = $("logs");
    return box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  }
  function scrollLogsToEnd() {
    const box = $("logs");
    box.scrollTop = box.scrollHeight;
    state.logsUnseen = 0;
    $("logs-jump").hidden = true;
  }

  function addLogs(logs) {
    const box = $("logs");
    const q = $("logs-filter").value.trim().toLowerCase();
    const frag = document.createDocumentFragment();
    let added = 0;
    let errors = false;
    for (const rec of logs) {
      if (!rec || typeof rec !== "object") continue;
      const key = [rec.at, rec.level, rec.logger, rec.message].join("|");
      if (!remember(state.seenLogs, state.seenLogsQueue, key)) continue;
      const group = levelGroup(rec.level);
      if (group === "ERROR") errors = true;
      const at = typeof rec.at === "number" ? rec.at : Date.now() / 1000;
      const line = h("div", { className: "log-line", data: { level: String(rec.level || "INFO"), group } },
        h("span", { className: "log-time", text: clockTime(at), title: fullTime(at) }),
        h("span", { className: "log-level", text: String(rec.level || "") }),
        h("span", { className: "log-logger", text: String(rec.logger || ""), title: String(rec.logger || "") }),
        h("span", { className: "log-msg", text: String(rec.message === undefined ? "" : rec.message) }));
      if (q && !logMatches(line, q)) line.hidden = true;
      frag.append(line);
      added++;
    }
    if (!added) return;
    const visible = state.tab === "logs";
    const stick = visible ? logsAtBottom() || state.logsStick : state.logsStick;
    const empty = box.querySelector(".empty");
    if (empty) empty.remove();
    box.append(frag);
    let extra = box.children.length - MAX_LOG_LINES;
    while (extra-- > 0) box.firstChild.remove();
    if (stick) {
      state.logsStick = true;
      if (visible) scrollLogsToEnd();
    } else {
      state.logsUnseen += added;
      const jump = $("logs-jump");
      jump.hidden = false;
      setText(jump, `↓ ${NUMBER.format(state.logsUnseen)} new`);
    }
    if (errors && !visible) $("badge-logs").hidden = false;
    updateLogsInfo();
  }

  function logMatches(line, q) {
    return line.textContent.toLowerCase().includes(q);
  }

  function applyLogFilter() {
    const box = $("logs");
    for (const level of LEVEL_GROUPS) {
      const input = document.querySelector(`input[data-level-toggle="${level}"]`);
      box.classList.toggle("hide-" + level, !input.checked);
    }
    const q = $("logs-filter").value.trim().toLowerCase();
    for (const line of box.children) {
      if (!line.classList.contains("log-line")) continue;
      line.hidden = q !== "" && !logMatches(line, q);
    }
    if (state.logsStick) scrollLogsToEnd();
    updateLogsInfo();
  }

  function updateLogsInfo() {
    const n = $("logs").querySelectorAll(".log-line").length;
    setText($("logs-info"), n ? `${NUMBER.format(n)} line${n === 1 ? "" : "s"}` : "");
  }

  function showLogsEmpty() {
    const box = $("logs");
    if (!box.children.length) box.append(h("div", { className: "empty", text: "No log records yet." }));
  }

  // ----- stats & plots --------------------------------------------------------------------------------------
  function addStats(t, stats) {
    if (!stats || typeof stats !== "object") return;
    const at = typeof t === "number" ? t : serverNow();
    state.lastStats = stats;
    if (typeof stats.calls_per_s === "number") setText($("act-calls-info"), `${stats.calls_per_s.toFixed(1)}/s`);
    const hist = state.history;
    if (hist.length && at <= hist[hist.length - 1].t) return;
    hist.push({
      t: at,
      tx: Number(stats.tx_per_s) || 0,
      p50: Number(stats.reducer_ms_p50) || 0,
      max: Number(stats.reducer_ms_max) || 0,
      clients: Number(stats.clients) || 0,
    });
    while (hist.length && hist[0].t < at - PLOT_SECONDS - 5) hist.shift();
    setText($("pv-tx"), (Number(stats.tx_per_s) || 0).toFixed(1));
    setText($("pv-ms"), `${fmtNum(stats.reducer_ms_p50)} / ${fmtNum(stats.reducer_ms_max)}`);
    setText($("pv-clients"), String(Number(stats.clients) || 0));
    updateCallsInfo();
    drawPlots();
  }

  function fmtNum(v) {
    const n = Number(v) || 0;
    return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : String(Math.round(n));
  }

  let plotColors = null;
  function colors() {
    if (!plotColors) {
      const css = getComputedStyle(document.documentElement);
      const get = (name, fallback) => (css.getPropertyValue(name) || "").trim() || fallback;
      plotColors = {
        accent: get("--accent", "#7aa2f7"),
        warn: get("--warn", "#e2b866"),
        ok: get("--ok", "#86c99a"),
        grid: "rgba(255,255,255,0.06)",
        text: get("--faint", "#5f6878"),
        font: get("--font-ui", "sans-serif"),
      };
    }
    return plotColors;
  }

  function niceMax(v, floor) {
    const m = Math.max(v, floor);
    const p = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (f * p >= m) return f * p;
    return 10 * p;
  }

  function drawPlots() {
    const hist = state.history;
    const now = hist.length ? hist[hist.length - 1].t : serverNow();
    const c = colors();
    drawPlot($("plot-tx"), hist, now, [{ key: "tx", color: c.accent, fill: true }], 1, false);
    drawPlot($("plot-ms"), hist, now, [
      { key: "max", color: c.warn, fill: false, width: 1.2 },
      { key: "p50", color: c.accent, fill: true },
    ], 0.1, false);
    drawPlot($("plot-clients"), hist, now, [{ key: "clients", color: c.ok, fill: true }], 1, true);
  }

  function drawPlot(canvas, hist, now, series, floor, steps) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const hgt = canvas.clientHeight;
    if (!w || !hgt) return;
    const pw = Math.round(w * dpr);
    const ph = Math.round(hgt * dpr);
    if (canvas.width !== pw || canvas.height !== ph) {
      canvas.width = pw;
      canvas.height = ph;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const col = colors();
    const t0 = now - PLOT_SECONDS;
    const pts = hist.filter((p) => p.t >= t0 - 2);
    let top = 0;
    for (const p of pts) for (const s of series) top = Math.max(top, p[s.key]);
    const ymax = niceMax(top * 1.1, floor);
    const padTop = 3;
    const padBottom = 1.5;
    const x = (t) => ((t - t0) / PLOT_SECONDS) * w;
    const y = (v) => hgt - padBottom - (Math.min(v, ymax) / ymax) * (hgt - padTop - padBottom);

    // grid: the baseline and the middle
    ctx.strokeStyle = col.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, Math.round(y(0)) - 0.5); ctx.lineTo(w, Math.round(y(0)) - 0.5);
    ctx.moveTo(0, Math.round(y(ymax / 2)) + 0.5); ctx.lineTo(w, Math.round(y(ymax / 2)) + 0.5);
    ctx.stroke();

    for (const s of series) {
      // split into runs: a gap of more than 5 s (the socket was down) breaks the line
      const runs = [];
      let run = [];
      for (let i = 0; i < pts.length; i++) {
        if (i && pts[i].t - pts[i - 1].t > 5) { runs.push(run); run = []; }
        run.push(pts[i]);
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        if (!r.length) continue;
        const path = new Path2D();
        path.moveTo(x(r[0].t), y(r[0][s.key]));
        for (let i = 1; i < r.length; i++) {
          if (steps) path.lineTo(x(r[i].t), y(r[i - 1][s.key]));
          path.lineTo(x(r[i].t), y(r[i][s.key]));
        }
        if (r.length === 1) path.lineTo(x(r[0].t) + 1.5, y(r[0][s.key]));
        if (s.fill) {
          const area = new Path2D(path);
          area.lineTo(x(r[r.length - 1].t), y(0));
          area.lineTo(x(r[0].t), y(0));
          area.closePath();
          const grad = ctx.createLinearGradient(0, padTop, 0, hgt);
          grad.addColorStop(0, withAlpha(s.color, 0.28));
          grad.addColorStop(1, withAlpha(s.color, 0.02));
          ctx.fillStyle = grad;
          ctx.fill(area);
        }
        ctx.strokeStyle = s.color;
        ctx.lineWidth = s.width || 1.5;
        ctx.lineJoin = "round";
        ctx.stroke(path);
      }
    }

    // the scale, top left
    ctx.font = `10px ${col.font}`;
    ctx.fillStyle = col.text;
    ctx.textBaseline = "top";
    ctx.fillText(ymax >= 10 ? String(Math.round(ymax)) : String(+ymax.toFixed(2)), 2, 1);
  }

  function withAlpha(hex, alpha) {
    const m = /^#([0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    const n = parseInt(m[1], 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
  }

  // ----- the WebSocket ------------------------------------------------------------------------------------
  function setStatus(stateName, text, detail) {
    const el = $("ws-status");
    el.dataset.state = stateName;
    setText(el, text);
    setText($("ws-detail"), detail || "");
  }

  function connect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/_console/ws`);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    setStatus("connecting", "connecting", state.attempt ? `attempt ${state.attempt + 1}` : "");
    ws.onopen = () => {
      if (state.ws !== ws) return;
      state.wsOpen = true;
      state.attempt = 0;
      state.sentView = undefined;
      setStatus("live", "live", "updates as they happen");
      hideBanner("offline");
      sendView(true);
    };
    ws.onmessage = (ev) => {
      if (state.ws === ws) onMessage(ev.data);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsOpen = false;
      scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows and reconnects */ };
  }

  function scheduleReconnect() {
    const base = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
    const delay = Math.round(base * (0.85 + Math.random() * 0.3));
    state.attempt++;
    state.retryAt = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      if (state.authFailed) {
        setStatus("denied", "not authorised", `retrying in ${left} s`);
      } else {
        setStatus("offline", "offline", `connection lost · reconnecting in ${left} s`);
      }
    };
    tick();
    clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tick, 500);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(reconnect, delay);
  }

  /** Check the server (and our session) through the API first, then open the socket again. */
  async function reconnect() {
    clearInterval(state.countdownTimer);
    setStatus(state.authFailed ? "denied" : "connecting", state.authFailed ? "not authorised" : "connecting", "reconnecting…");
    try {
      await loadSchema();
    } catch (e) {
      scheduleReconnect();
      return;
    }
    connect();
  }

  function onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.t === "number") state.clockOffset = msg.t - Date.now() / 1000;
    const parts = [
      ["counts", () => msg.counts && typeof msg.counts === "object" && applyCounts(msg.counts)],
      ["page", () => msg.page && applyPage(msg.page)],
      ["calls", () => Array.isArray(msg.calls) && addCalls(msg.calls)],
      ["clients", () => Array.isArray(msg.clients) && renderClients(msg.clients)],
      ["logs", () => Array.isArray(msg.logs) && addLogs(msg.logs)],
      ["stats", () => msg.stats && addStats(msg.t, msg.stats)],
    ];
    for (const [name, run] of parts) {
      try { run(); } catch (e) { console.warn(`dev console: could not show "${name}"`, e); }
    }
  }

  // ----- SQL ----------------------------------------------------------------------------------------------
  let sqlRunning = false;
  async function runSql() {
    if (sqlRunning) return;
    const sql = $("sql-input").value.trim();
    const out = $("sql-result");
    if (!sql) {
      $("sql-input").focus();
      return;
    }
    try { sessionStorage.setItem("console.sql", $("sql-input").value); } catch (e) { /* storage may be off */ }
    sqlRunning = true;
    $("sql-run").disabled = true;
    setText($("sql-meta"), "running…");
    const t0 = performance.now();
    try {
      const res = await api("/_console/api/sql", { sql });
      if (!res.ok || !res.data || typeof res.data.error === "string") {
        out.replaceChildren(h("div", { className: "error-box", text: errorText(res) }));
        setText($("sql-meta"), `error · ${fmtMs(performance.now() - t0)}`);
        return;
      }
      const data = res.data;
      const results = Array.isArray(data.results) && data.results.length ? data.results : [data];
      const nodes = [];
      results.forEach((r, i) => {
        const rows = Array.isArray(r.rows) ? r.rows : [];
        const total = typeof r.total === "number" ? r.total : rows.length;
        let head = `${NUMBER.format(total)} row${total === 1 ? "" : "s"}`;
        if (total > rows.length) head += ` (first ${NUMBER.format(rows.length)} shown)`;
        if (results.length > 1) head = `result ${i + 1} · ` + head;
        nodes.push(h("div", { className: "result-head", text: head }));
        nodes.push(resultTable(Array.isArray(r.columns) ? r.columns : [], rows));
      });
      out.replaceChildren(...nodes);
      out.scrollTop = 0;
      const elapsed = typeof data.elapsed_ms === "number" ? data.elapsed_ms : performance.now() - t0;
      setText($("sql-meta"), `${fmtMs(elapsed)} on the server`);
    } catch (e) {
      if (!(e instanceof AuthError)) out.replaceChildren(h("div", { className: "error-box", text: "the request failed: " + e.message }));
      else out.replaceChildren(h("div", { className: "error-box", text: AUTH_TEXT }));
      setText($("sql-meta"), "");
    } finally {
      sqlRunning = false;
      $("sql-run").disabled = false;
    }
  }

  function resultTable(columns, rows) {
    const table = h("table", { className: "grid data-grid" });
    const headRow = h("tr", null, h("th", { className: "rownum", text: "#" }),
      ...columns.map((c) => h("th", { className: "col" }, h("div", { className: "col-name", text: c }))), h("th", { className: "fill" }));
    table.append(h("thead", null, headRow));
    const body = h("tbody");
    rows.forEach((row, r) => {
      const tr = h("tr", { data: { row: String(r) } }, h("td", { className: "rownum", text: String(r + 1) }));
      for (let c = 0; c < columns.length; c++) {
        const td = h("td");
        cellValue(td, Array.isArray(row) ? row[c] : undefined, "");
        tr.append(td);
      }
      tr.append(h("td", { className: "fill" }));
      body.append(tr);
    });
    table.append(body);
    if (!rows.length) {
      const wrap = h("div", null, table, h("div", { className: "empty", text: "No rows." }));
      return wrap;
    }
    return table;
  }

  // ----- call a reducer ------------------------------------------------------------------------------------
  let callFields = [];

  function renderReducerSelect() {
    const select = $("call-reducer");
    const previous = select.value;
    const reducers = state.schema ? state.schema.reducers || [] : [];
    const options = [];
    let firstCallable = "";
    for (const r of reducers) {
      const blocked = !!r.lifecycle || r.callable === false;
      const label = r.lifecycle ? `${r.name}  (lifecycle: ${r.lifecycle})` : r.callable === false ? `${r.name}  (not callable)` : r.name;
      const opt = h("option", { text: label });
      opt.value = r.name;
      opt.disabled = blocked;
      options.push(opt);
      if (!blocked && !firstCallable) firstCallable = r.name;
    }
    if (!options.length) {
      const opt = h("option", { text: "no reducers in this module" });
      opt.value = "";
      opt.disabled = true;
      options.push(opt);
    }
    select.replaceChildren(...options);
    const keep = reducers.find((r) => r.name === previous && !r.lifecycle && r.callable !== false);
    select.value = keep ? previous : firstCallable;
    buildForm();
  }

  /** How to edit a value of a parameter's type: from the readable label and the SATS type as JSON. */
  function classify(label, jt) {
    label = String(label || "");
    const kind = jt && typeof jt === "object" ? Object.keys(jt)[0] : null;
    const prim = {
      Bool: "bool", String: "string", F32: "float", F64: "float",
      U8: "u8", U16: "u16", U32: "u32", U64: "u64", U128: "u128", U256: "u256",
      I8: "i8", I16: "i16", I32: "i32", I64: "i64", I128: "i128", I256: "i256",
    };
    if (kind && kind in prim) return kindOf(prim[kind]);
    if (kind === "Array") {
      const elem = jt.Array;
      if (elem && typeof elem === "object" && "U8" in elem) return { kind: "bytes" };
      return { kind: "json" };
    }
    if (kind === "Sum") {
      const variants = (jt.Sum && jt.Sum.variants) || [];
      const names = variants.map((v) => (v.name && v.name.some) || null);
      if (names.length === 2 && names[0] === "some" && names[1] === "none") {
        const inner = label.startsWith("Option<") && label.endsWith(">") ? label.slice(7, -1) : "";
        return { kind: "option", inner: classify(inner, variants[0].algebraic_type), innerLabel: inner };
      }
      const unit = variants.every((v) => {
        const t = v.algebraic_type;
        return t && t.Product && Array.isArray(t.Product.elements) && t.Product.elements.length === 0;
      });
      if (unit && names.every((n) => typeof n === "string") && names.length) return { kind: "enum", names };
      return { kind: "json" };
    }
    if (kind === "Product" || kind === null) {
      if (label in HEX_TYPES) return { kind: "hex", digits: HEX_TYPES[label] };
      if (label === "Timestamp") return { kind: "timestamp" };
      if (label === "TimeDuration") return { kind: "duration" };
      if (kind === null) {
        // no SATS type: go by the label alone
        const simple = { bool: "bool", String: "string", f32: "float", f64: "float" };
        if (label in simple) return kindOf(simple[label]);
        if (label in INT_RANGES) return kindOf(label);
        if (label.startsWith("Option<") && label.endsWith(">")) {
          const inner = label.slice(7, -1);
          return { kind: "option", inner: classify(inner, null), innerLabel: inner };
        }
      }
    }
    return { kind: "json" };
  }

  function kindOf(name) {
    if (name in INT_RANGES) return { kind: "int", int: name };
    return { kind: name };
  }

  function exampleFor(jt, depth) {
    if (!jt || typeof jt !== "object" || depth > 4) return undefined;
    const kind = Object.keys(jt)[0];
    if (kind === "Bool") return false;
    if (kind === "String") return "";
    if (/^[UI]\d+$/.test(kind) || kind === "F32" || kind === "F64") return 0;
    if (kind === "Array") return [];
    if (kind === "Product") {
      const els = (jt.Product && jt.Product.elements) || [];
      if (els.length === 1 && els[0].name && typeof els[0].name.some === "string" && els[0].name.some.startsWith("__")) return undefined;
      const obj = {};
      for (const e of els) {
        const name = e.name && e.name.some;
        if (typeof name !== "string") return undefined;
        const v = exampleFor(e.algebraic_type, depth + 1);
        obj[name] = v === undefined ? null : v;
      }
      return obj;
    }
    if (kind === "Sum") {
      const v = (jt.Sum && jt.Sum.variants) || [];
      if (!v.length) return undefined;
      const name = v[0].name && v[0].name.some;
      const inner = exampleFor(v[0].algebraic_type, depth + 1);
      return { [name || "0"]: inner === undefined ? null : inner };
    }
    return undefined;
  }

  /** A control for one value; returns {node, read(): value (throws Error with a message), inputs[]}. */
  function makeControl(spec, name, label, jt) {
    const attrs = { name, id: "f-" + name };
    switch (spec.kind) {
      case "bool": {
        const input = h("input", { attrs: { ...attrs, type: "checkbox" } });
        const wrap = h("label", { className: "check bool-check" }, input, "true");
        input.addEventListener("change", () => setText(wrap.lastChild, input.checked ? "true" : "false"));
        wrap.lastChild.textContent = "false";
        return { node: wrap, inputs: [input], read: () => input.checked };
      }
      case "string": {
        const input = h("input", { className: "input", attrs: { ...attrs, type: "text", spellcheck: "false" } });
        return { node: input, inputs: [input], read: () => input.value };
      }
      case "float": {
        const input = h("input", { className: "input", attrs: { ...attrs, type: "number", step: "any", placeholder: "0.0" } });
        return {
          node: input, inputs: [input],
          read: () => {
            const text = input.value.trim();
            if (!text) throw new Error(input.validity && input.validity.badInput ? "not a number" : "enter a number");
            const v = Number(text);
            if (!Number.isFinite(v)) throw new Error("not a number");
            if (spec.kind === "float" && label === "f32" && Math.abs(v) > 3.4028234663852886e38) throw new Error("out of range for f32");
            return v;
          },
        };
      }
      case "int": {
        const [lo, hi] = INT_RANGES[spec.int];
        const small = SMALL_INTS.has(spec.int);
        const input = small
          ? h("input", { className: "input", attrs: { ...attrs, type: "number", step: "1", min: String(lo), max: String(hi), placeholder: "0" } })
          : h("input", { className: "input", attrs: { ...attrs, type: "text", inputmode: "numeric", spellcheck: "false", placeholder: `integer (${spec.int}: digits)` } });
        return {
          node: input, inputs: [input],
          read: () => {
            const text = input.value.trim();
            if (!text) throw new Error(input.validity && input.validity.badInput ? "not a whole number" : "enter a whole number");
            if (!/^-?\d+$/.test(text)) throw new Error("a whole number (digits only)");
            const big = BigInt(text);
            if (big < lo || big > hi) throw new Error(`out of range for ${spec.int}: ${lo}..${hi}`);
            const n = Number(big);
            return Number.isSafeInteger(n) ? n : big.toString();
          },
        };
      }
      case "hex": {
        const input = h("input", { className: "input code", attrs: { ...attrs, type: "text", spellcheck: "false", placeholder: `${spec.digits} hex digits` } });
        let node = input;
        if (label === "Identity" && state.schema && state.schema.owner) {
          const btn = h("button", { className: "btn btn-mini", text: "owner", title: "use the owner's identity", attrs: { type: "button" } });
          btn.addEventListener("click", () => { input.value = state.schema.owner; input.dispatchEvent(new Event("input", { bubbles: true })); });
          node = h("div", { className: "field-row" }, input, btn);
        }
        return {
          node, inputs: [input],
          read: () => {
            let text = input.value.trim().toLowerCase();
            if (text.startsWith("0x")) text = text.slice(2);
            if (!/^[0-9a-f]+$/.test(text)) throw new Error("hex digits only (0-9, a-f)");
            if (text.length !== spec.digits) throw new Error(`${spec.digits} hex digits (got ${text.length})`);
            return text;
          },
        };
      }
      case "bytes": {
        const input = h("input", { className: "input code", attrs: { ...attrs, type: "text", spellcheck: "false", placeholder: "bytes as hex, e.g. 00ff10" } });
        return {
          node: input, inputs: [input],
          read: () => {
            let text = input.value.trim().toLowerCase().replace(/\s+/g, "");
            if (text.startsWith("0x")) text = text.slice(2);
            if (text && !/^[0-9a-f]+$/.test(text)) throw new Error("hex digits only (0-9, a-f)");
            if (text.length % 2) throw new Error("an even number of hex digits");
            return text;
          },
        };
      }
      case "timestamp": {
        const input = h("input", { className: "input", attrs: { ...attrs, type: "datetime-local", step: "0.001" } });
        const now = new Date();
        input.value = localInputValue(now);
        const btn = h("button", { className: "btn btn-mini", text: "now", attrs: { type: "button" } });
        btn.addEventListener("click", () => { input.value = localInputValue(new Date()); input.dispatchEvent(new Event("input", { bubbles: true })); });
        return {
          node: h("div", { className: "field-row" }, input, btn), inputs: [input],
          read: () => {
            if (!input.value) throw new Error("pick a date and time");
            const ms = new Date(input.value).getTime();
            if (!Number.isFinite(ms)) throw new Error("not a valid time");
            return Math.round(ms) * 1000; // microseconds since the Unix epoch
          },
        };
      }
      case "duration": {
        const input = h("input", { className: "input", attrs: { ...attrs, type: "number", step: "1", placeholder: "microseconds" } });
        return {
          node: input, inputs: [input],
          read: () => {
            const text = input.value.trim();
            if (!/^-?\d+$/.test(text)) throw new Error("a whole number of microseconds");
            return Number(text);
          },
        };
      }
      case "enum": {
        const select = h("select", { className: "input", attrs });
        for (const n of spec.names) {
          const opt = h("option", { text: n });
          opt.value = n;
          select.append(opt);
        }
        return { node: select, inputs: [select], read: () => select.value };
      }
      case "option": {
        const inner = makeControl(spec.inner, name, spec.innerLabel, jt && jt.Sum && jt.Sum.variants && jt.Sum.variants[0] ? jt.Sum.variants[0].algebraic_type : null);
        const none = h("input", { attrs: { type: "checkbox", name: "none-" + name.replace(/^arg-/, "") } });
        const noneLabel = h("label", { className: "check none-check", title: "send none (null)" }, none, "none");
        const sync = () => { for (const i of inner.inputs) i.disabled = none.checked; };
        none.addEventListener("change", sync);
        return {
          node: h("div", { className: "field-row" }, inner.node, noneLabel),
          inputs: [...inner.inputs, none],
          read: () => (none.checked ? null : { some: inner.read() }),
        };
      }
      default: {
        const example = exampleFor(jt, 0);
        const placeholder = example !== undefined ? compactJson(example) : `a JSON value of type ${label}`;
        const input = h("textarea", { className: "input code", attrs: { ...attrs, rows: "3", spellcheck: "false", placeholder } });
        return {
          node: input, inputs: [input],
          read: () => {
            const text = input.value.trim();
            if (!text) throw new Error("enter a JSON value");
            try { return JSON.parse(text); } catch (e) { throw new Error("not valid JSON: " + e.message); }
          },
        };
      }
    }
  }

  function localInputValue(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function selectedReducer() {
    const name = $("call-reducer").value;
    const reducers = state.schema ? state.schema.reducers || [] : [];
    return reducers.find((r) => r.name === name) || null;
  }

  function buildForm() {
    const box = $("call-fields");
    const reducer = selectedReducer();
    callFields = [];
    const nodes = [];
    if (!reducer) {
      nodes.push(h("p", { className: "call-empty", text: "Choose a reducer." }));
    } else if (!(reducer.params || []).length) {
      nodes.push(h("p", { className: "call-empty", text: `${reducer.name} takes no arguments.` }));
    }
    for (const p of reducer ? reducer.params || [] : []) {
      const spec = classify(p.type, p.json_type);
      const control = makeControl(spec, "arg-" + p.name, p.type, p.json_type);
      const error = h("div", { className: "field-error" });
      const label = h("label", { className: "field-label", attrs: { for: "f-arg-" + p.name } }, p.name,
        h("span", { className: "field-type", text: p.type }));
      nodes.push(h("div", { className: "field" }, label, h("div", { className: "field-control" }, control.node, error)));
      callFields.push({ param: p, control, error });
    }
    box.replaceChildren(...nodes);
    $("call-submit").disabled = !reducer || !!reducer.lifecycle || reducer.callable === false;
    $("call-result").replaceChildren();
    updatePreview(false);
  }

  /** The arguments, or null when a field is wrong (each wrong field says why when ``show``). */
  function collectArgs(show) {
    const args = [];
    let ok = true;
    let firstBad = null;
    for (const f of callFields) {
      let msg = "";
      try {
        args.push(f.control.read());
      } catch (e) {
        ok = false;
        msg = e.message;
        if (!firstBad) firstBad = f.control.inputs[0];
      }
      for (const input of f.control.inputs) if (input.classList.contains("input")) input.setAttribute("aria-invalid", msg && show ? "true" : "false");
      setText(f.error, show ? msg : "");
    }
    return { ok, args, firstBad };
  }

  function updatePreview(show) {
    const { ok, args } = collectArgs(show);
    setText($("call-preview"), ok ? JSON.stringify({ args }, null, 2) : "(some arguments are not valid yet)");
  }

  let calling = false;
  async function submitCall(ev) {
    if (ev) ev.preventDefault();
    if (calling) return;
    const reducer = selectedReducer();
    const out = $("call-result");
    if (!reducer) return;
    const { ok, args, firstBad } = collectArgs(true);
    updatePreview(true);
    if (!ok) {
      out.replaceChildren(h("span", { className: "outcome" }, h("span", { className: "pill pill-rejected", text: "not sent" }),
        h("span", { className: "outcome-msg", text: "fix the fields marked in red" })));
      if (firstBad) firstBad.focus();
      return;
    }
    calling = true;
    $("call-submit").disabled = true;
    out.replaceChildren(h("span", { className: "outcome" }, h("span", { className: "pill pill-pending", text: "calling…" })));
    try {
      const res = await api(`/_console/api/call/${encodeURIComponent(reducer.name)}`, { args });
      const d = res.data || {};
      if (!res.ok || typeof d.status !== "string") {
        out.replaceChildren(h("span", { className: "outcome" }, h("span", { className: "pill pill-rejected", text: "rejected" }),
          h("span", { className: "outcome-msg", text: errorText(res) })));
        return;
      }
      const status = ["committed", "failed", "internal"].includes(d.status) ? d.status : "internal";
      const line = h("span", { className: "outcome" }, h("span", { className: "pill pill-" + status, text: status === "internal" ? "internal error" : status }));
      if (d.message) line.append(h("span", { className: "outcome-msg", text: String(d.message) }));
      if (typeof d.duration_ms === "number") line.append(h("span", { className: "dur", text: fmtMs(d.duration_ms) }));
      out.replaceChildren(line);
    } catch (e) {
      out.replaceChildren(h("span", { className: "outcome" }, h("span", { className: "pill pill-rejected", text: "error" }),
        h("span", { className: "outcome-msg", text: e instanceof AuthError ? AUTH_TEXT : "the request failed: " + e.message })));
    } finally {
      calling = false;
      const r = selectedReducer();
      $("call-submit").disabled = !r || !!r.lifecycle || r.callable === false;
    }
  }

  // ----- wiring ---------------------------------------------------------------------------------------------
  function wire() {
    // tabs (arrow keys move between them)
    const tabs = Array.from(document.querySelectorAll(".tab"));
    for (const btn of tabs) {
      btn.addEventListener("click", () => selectTab(btn.dataset.tab));
      btn.addEventListener("keydown", (ev) => {
        if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
        const i = tabs.indexOf(btn) + (ev.key === "ArrowRight" ? 1 : -1);
        const next = tabs[(i + tabs.length) % tabs.length];
        next.focus();
        selectTab(next.dataset.tab);
      });
    }

    // sidebar
    const list = $("table-list");
    const pick = (ev) => {
      const li = ev.target.closest("li[data-table]");
      if (!li) return;
      if (state.tab !== "table") selectTab("table");
      if (li.dataset.table !== state.view.table) showTable(li.dataset.table, 0);
      else fetchPage();
    };
    list.addEventListener("click", pick);
    list.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(ev); }
    });
    $("table-filter").addEventListener("input", applyTableFilter);

    // pager
    $("page-first").addEventListener("click", () => goToPage(0));
    $("page-prev").addEventListener("click", () => goToPage(state.view.offset - PAGE_SIZE));
    $("page-next").addEventListener("click", () => goToPage(state.view.offset + PAGE_SIZE));
    $("page-last").addEventListener("click", () => goToPage(Math.floor((state.total - 1) / PAGE_SIZE) * PAGE_SIZE));
    $("table-sql").addEventListener("click", () => {
      if (!state.view.table) return;
      $("sql-input").value = `SELECT * FROM ${state.view.table}`;
      selectTab("sql");
      $("sql-input").focus();
    });

    // calls
    $("calls-filter").addEventListener("input", applyCallFilter);
    $("calls-errors").addEventListener("change", applyCallFilter);
    $("calls-pause").addEventListener("click", () => {
      state.callsPaused = !state.callsPaused;
      if (!state.callsPaused && state.callsBuffer.length) {
        const buffered = state.callsBuffer;
        state.callsBuffer = [];
        insertCalls(buffered, false);
      }
      updatePauseButton();
    });
    $("calls-clear").addEventListener("click", () => {
      $("calls-body").replaceChildren();
      state.callsBuffer = [];
      updatePauseButton();
      updateCallsInfo();
    });

    // logs
    for (const input of document.querySelectorAll("input[data-level-toggle]")) input.addEventListener("change", applyLogFilter);
    $("logs-filter").addEventListener("input", applyLogFilter);
    $("logs").addEventListener("scroll", () => {
      if (state.tab !== "logs") return;
      state.logsStick = logsAtBottom();
      if (state.logsStick) { state.logsUnseen = 0; $("logs-jump").hidden = true; }
    }, { passive: true });
    $("logs-jump").addEventListener("click", () => { state.logsStick = true; scrollLogsToEnd(); });
    $("logs-clear").addEventListener("click", () => {
      $("logs").replaceChildren();
      showLogsEmpty();
      state.logsUnseen = 0;
      $("logs-jump").hidden = true;
      updateLogsInfo();
    });

    // the activity column
    $("act-toggle").addEventListener("click", () => setActivity($("act-toggle").getAttribute("aria-pressed") !== "true"));
    try { if (localStorage.getItem("console.activity") === "0") setActivity(false); } catch (e) { /* storage may be off */ }

    // SQL
    $("sql-run").addEventListener("click", runSql);
    $("sql-input").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); runSql(); }
    });
    try {
      const saved = sessionStorage.getItem("console.sql");
      if (saved) $("sql-input").value = saved;
    } catch (e) { /* storage may be off */ }

    // call a reducer
    $("call-reducer").addEventListener("change", buildForm);
    $("call-form").addEventListener("submit", submitCall);
    $("call-form").addEventListener("input", () => updatePreview(false));
    $("call-form").addEventListener("change", () => updatePreview(false));
    $("call-form").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submitCall(); }
    });

    // plots: redraw on resize (and on a change of devicePixelRatio, which fires resize too)
    let pending = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(drawPlots);
    });
    setInterval(renderClientDurations, 1000);
  }

  async function start() {
    wire();
    showLogsEmpty();
    updateCallsInfo();
    drawPlots();
    const loc = readLocation();
    state.view.table = loc.table;
    state.view.offset = loc.offset;
    selectTab(loc.tab);
    setStatus("connecting", "connecting", "");
    try {
      await loadSchema();
    } catch (e) {
      if (!(e instanceof AuthError)) showBanner("could not load the schema: " + e.message + " (retrying)", "offline");
      scheduleReconnect();
      return;
    }
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
