// The live dashboard of a pomelo_twisted cluster: plain JavaScript, no framework.
// It listens to /api/events (Server-Sent Events, one "snapshot" event per interval),
// renders the servers table, and posts actions to /api/action with the admin secret
// (asked once, kept in sessionStorage for this tab).
"use strict";

(function () {
  const SECRET_KEY = "pomelo-twisted-dashboard-secret";
  const DASH = "—";
  const expanded = new Set();
  let lastSnapshot = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) node.appendChild(child);
    return node;
  }

  function shown(value) {
    return value === null || value === undefined ? DASH : String(value);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return DASH;
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d > 0) return `${d}d ${two(h)}h`;
    if (h > 0) return `${h}h ${two(m)}m`;
    if (m > 0) return `${m}m ${two(sec)}s`;
    return `${sec}s`;
  }

  function millis(seconds) {
    if (seconds === null || seconds === undefined) return DASH;
    return `${(seconds * 1000).toFixed(seconds < 0.001 ? 2 : 1)} ms`;
  }

  function rate(value) {
    if (value === null || value === undefined) return DASH;
    return value >= 100 ? value.toFixed(0) : value.toFixed(1);
  }

  function stateOf(server) {
    if (server.state === "up" && server.type !== "master" && !server.answered) return "silent";
    return server.state || "down";
  }

  function breakersCell(breakers) {
    const cell = el("td", { "data-field": "breakers" });
    if (breakers === null || breakers === undefined) {
      cell.textContent = DASH;
      return cell;
    }
    const tripped = Object.entries(breakers);
    if (tripped.length === 0) {
      cell.textContent = "all closed";
      return cell;
    }
    tripped.forEach(([peer, state], index) => {
      if (index > 0) cell.appendChild(document.createTextNode(", "));
      cell.appendChild(el("span", { className: `breaker-${state}`, text: `${peer}: ${state}` }));
    });
    return cell;
  }

  function actionsCell(server) {
    const cell = el("td", { "data-field": "actions" });
    if (server.type === "master") return cell;
    for (const [action, label, danger] of [
      ["restart", "Restart", false],
      ["drain", "Drain", false],
      ["stop", "Stop", true],
    ]) {
      const button = el("button", {
        type: "button",
        className: danger ? "action danger" : "action",
        "data-action": action,
        "aria-label": `${label} ${server.id}`,
        text: label,
      });
      button.addEventListener("click", () => act(action, server.id));
      cell.appendChild(button);
    }
    return cell;
  }

  function routesRow(server) {
    const routes = server.routes;
    const cell = el("td", { colspan: "12" });
    if (!routes || routes.length === 0) {
      cell.appendChild(el("p", {
        className: "empty",
        text: routes ? "No request yet." : "No route statistics (metrics are off on this server).",
      }));
    } else {
      const body = el("tbody", {}, routes.map((r) => el("tr", {}, [
        el("th", { scope: "row", text: r.route }),
        el("td", { className: "num", text: shown(r.count) }),
        el("td", { className: "num", text: millis(r.p50) }),
        el("td", { className: "num", text: millis(r.p99) }),
      ])));
      const head = el("thead", {}, [el("tr", {}, [
        el("th", { scope: "col", text: "Route" }),
        el("th", { scope: "col", className: "num", text: "Requests" }),
        el("th", { scope: "col", className: "num", text: "p50" }),
        el("th", { scope: "col", className: "num", text: "p99" }),
      ])]);
      cell.appendChild(el("table", { className: "route-table", "aria-label": `Routes of ${server.id}` }, [head, body]));
    }
    return el("tr", { className: "routes", id: `routes-${server.id}`, "data-routes-of": server.id }, [cell]);
  }

  // Rows are kept per server and updated in place (a button under the pointer is never
  // replaced between a press and its release); only the routes tables are rebuilt.
  const rows = new Map();  // server id -> {row, cells: {field: element}, toggle, arrow, type}
  const NUMBERS = [
    ["pid", (s) => shown(s.pid)],
    ["uptime", (s) => duration(s.uptime)],
    ["restarts", (s) => shown(s.restarts)],
    ["connections", (s) => shown(s.connections)],
    ["requestsPerSecond", (s) => rate(s.requestsPerSecond)],
    ["rpcErrors", (s) => shown(s.rpcErrors)],
  ];

  function toggleRoutes(id) {
    if (expanded.has(id)) expanded.delete(id);
    else expanded.add(id);
    if (lastSnapshot) render(lastSnapshot);
  }

  function newRow(server) {
    const cells = {};
    const cell = (tag, field, className) => (cells[field] = el(tag, { "data-field": field, className }));
    let name, toggle = null, arrow = null;
    if (server.type === "master") {  // the master has no routes to expand
      name = el("span", { className: "master-name", text: server.id });
    } else {
      arrow = el("span", { className: "arrow", "aria-hidden": "true" });
      toggle = el("button", {
        type: "button", className: "expand", "aria-controls": `routes-${server.id}`,
      }, [arrow, document.createTextNode(server.id)]);
      toggle.addEventListener("click", () => toggleRoutes(server.id));
      name = toggle;
    }
    const id = cell("th", "id");
    id.setAttribute("scope", "row");
    id.appendChild(name);
    const state = el("span");
    const row = el("tr", { "data-server": server.id }, [
      id,
      cell("td", "type"),
      cell("td", "state"),
      cell("td", "host"),
      ...NUMBERS.map(([field]) => cell("td", field, "num")),
      cell("td", "breakers"),
      actionsCell(server),
    ]);
    cells.state.appendChild(state);
    return { row, cells, toggle, arrow, state, type: server.type, breakers: undefined };
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function update(entry, server) {
    const state = stateOf(server);
    entry.row.dataset.state = state;
    setText(entry.cells.type, shown(server.type));
    setText(entry.state, state);
    entry.state.className = `state state-${state}`;
    setText(entry.cells.host, shown(server.host));
    for (const [field, text] of NUMBERS) setText(entry.cells[field], text(server));
    const breakers = JSON.stringify(server.breakers);
    if (breakers !== entry.breakers) {
      entry.breakers = breakers;
      entry.cells.breakers.replaceChildren(...breakersCell(server.breakers).childNodes);
    }
    if (entry.toggle) {
      const open = expanded.has(server.id);
      entry.toggle.setAttribute("aria-expanded", open ? "true" : "false");
      setText(entry.arrow, open ? "▾" : "▸");
    }
  }

  function render(snapshot) {
    lastSnapshot = snapshot;
    const wanted = [];
    const seen = new Set();
    for (const server of snapshot.servers) {
      let entry = rows.get(server.id);
      if (!entry || entry.type !== server.type) {
        entry = newRow(server);
        rows.set(server.id, entry);
      }
      seen.add(server.id);
      update(entry, server);
      wanted.push(entry.row);
      if (expanded.has(server.id)) wanted.push(routesRow(server));
    }
    for (const id of [...rows.keys()]) if (!seen.has(id)) rows.delete(id);
    // Put the wanted rows in place without moving the ones already there (a moved node
    // loses the focus and a click in progress): drop the others, then insert the new.
    const body = document.getElementById("server-rows");
    const keep = new Set(wanted);
    for (const node of [...body.children]) if (!keep.has(node)) node.remove();
    wanted.forEach((node, index) => {
      if (body.children[index] !== node) body.insertBefore(node, body.children[index] || null);
    });
    setText(document.getElementById("updated"), `updated ${new Date().toLocaleTimeString()}`);
  }

  function streamState(text, className) {
    const node = document.getElementById("stream-state");
    node.textContent = text;
    node.className = `stream-state ${className}`;
  }

  function report(text, ok) {
    const node = document.getElementById("result");
    node.textContent = text;
    node.className = ok ? "ok" : "refused";
  }

  function askSecret() {
    const stored = sessionStorage.getItem(SECRET_KEY);
    if (stored) return Promise.resolve(stored);
    const dialog = document.getElementById("secret-dialog");
    const input = document.getElementById("secret-input");
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const secret = dialog.returnValue === "ok" ? input.value : "";
        if (secret) sessionStorage.setItem(SECRET_KEY, secret);
        resolve(secret || null);
      }, { once: true });
      dialog.showModal();
    });
  }

  async function act(action, server) {
    if (action === "stop" && !window.confirm(`Stop ${server} for good?`)) return;
    const secret = await askSecret();
    if (!secret) {
      report(`${action} ${server}: cancelled (no admin secret)`, false);
      return;
    }
    report(`${action} ${server}: asking the master…`, true);
    let response, answer;
    try {
      response = await fetch("/api/action", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": `Bearer ${secret}` },
        body: JSON.stringify({ action, server }),
      });
      answer = await response.json();
    } catch (error) {
      report(`${action} ${server}: no answer from the master (${error})`, false);
      return;
    }
    if (response.status === 401) sessionStorage.removeItem(SECRET_KEY);
    if (response.ok) {
      const result = answer.result === null || answer.result === undefined
        ? "" : ` (${JSON.stringify(answer.result)})`;
      report(`${action} ${server}: done${result}`, true);
    } else {
      report(`${action} ${server} refused: ${answer.error || response.statusText}`, false);
    }
  }

  function listen() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => streamState("live", "live"));
    source.addEventListener("error", () => streamState("reconnecting…", "lost"));
    source.addEventListener("snapshot", (event) => {
      streamState("live", "live");
      render(JSON.parse(event.data));
    });
  }

  document.addEventListener("DOMContentLoaded", listen);
})();
