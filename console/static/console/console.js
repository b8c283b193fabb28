// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // The organization switcher submits on change (its button stays for no-JS use).
  document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });
  // Copy buttons: <button data-copy="#element-id">Copy</button>.
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const target = document.querySelector(button.dataset.copy);
      const text = target ? (target.value ?? target.textContent).trim() : "";
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        if (target && target.select) target.select();
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => (button.textContent = "Copy"), 2000);
    });
  });
  // Auto-refresh regions.
  //  <div data-refresh="5" data-refresh-url="/…/live/">: every 5 s while the page is visible,
  //  fetch the URL (an HTML fragment) and swap it in when it changed.
  //  <div data-refresh="5"> without a URL reloads the whole page instead.
  //  A live tail inside the region (below) stays the same element: while it is connected to the
  //  stream it keeps its rows and the rest of the region is swapped around it; while it is not,
  //  its content is swapped too, so the page stays current without the stream.
  const refreshers = new WeakMap();
  const swap = (region, html) => {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    region.querySelectorAll("[data-live-tail][id]").forEach((tail) => {
      const next = fresh.content.getElementById(tail.id);
      if (!next) return;
      if (tail.dataset.liveState !== "connected") tail.replaceChildren(...next.childNodes);
      next.replaceWith(tail);
    });
    region.replaceChildren(fresh.content);
  };
  document.querySelectorAll("[data-refresh]").forEach((region) => {
    const seconds = Number(region.dataset.refresh) || 5;
    const url = region.dataset.refreshUrl;
    if (!url) {
      setInterval(() => { if (!document.hidden) window.location.reload(); }, seconds * 1000);
      return;
    }
    let inflight = null;
    let last = null;
    const fetchAndSwap = async () => {
      try {
        const response = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
        if (response.redirected) {
          // Signed out meanwhile: let the whole page go where the server sends it.
          window.location.reload();
        } else if (response.ok) {
          const html = await response.text();
          if (html !== last) {
            last = html;
            swap(region, html);
          }
        }
      } catch {
        // Offline or the server restarted: try again at the next tick.
      }
    };
    // force: now, even if the page is hidden (a live tail catching up after a reconnect).
    const update = (force = false) => {
      if (inflight) return inflight;
      if (!force) {
        if (document.hidden) return Promise.resolve();
        // Do not swap the region under a pointer that is pressing one of its buttons.
        if (region.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return Promise.resolve();
      }
      inflight = fetchAndSwap().finally(() => (inflight = null));
      return inflight;
    };
    refreshers.set(region, update);
    setInterval(update, seconds * 1000);
  });
  // Live tails: <section id="…" data-live-tail="attempt" data-channel="deliveries:dst_…"
  // data-stream-url="ws://…/v1/ws"> holding a <template data-live-row> row, a table and a
  // [data-live-status] line. Each frame of the channel adds a row at the top of the table (at
  // most LIVE_ROWS rows), filled by the renderer that data-live-tail names (liveRenderers): it
  // returns the values of the row's [data-field] cells (a cell's data-href gets its value for
  // "__id__") and may adjust the row. The status line shows while subscribed. The stream
  // authenticates with this page's session cookie; after a drop it reconnects (1 s, doubling to
  // 30 s), and a tail inside an auto-refresh region first catches up with one refresh.
  const LIVE_ROWS = 100;
  const utcText = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
  const truncate = (text, length) => (text.length > length ? text.slice(0, length - 1) + "…" : text);
  const ATTEMPT_BADGES = { success: "ok", failed: "bad" };
  const liveRenderers = {
    // "events" frames: {id, source_id, topic_id, method, status, received_at}.
    event: (data) => ({ ...data, origin: data.source_id || data.topic_id || "", received_at: utcText(data.received_at) }),
    // "deliveries:<destination_id>" frames: one attempt, as stream/receivers.py attempt_frame says.
    attempt: (data, row) => {
      row.dataset.attemptStatus = data.status;
      row.querySelector("[data-field=status]")?.classList.add(ATTEMPT_BADGES[data.status] || "warn");
      if (!data.is_dlq) row.querySelector("[data-dead-letter]")?.remove();
      const at = new Date(data.created_at);
      return {
        ...data,
        time: utcText(data.created_at).slice(11),
        day: at.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" }),
        response_status: data.response_status ?? "—",
        duration: data.duration_ms == null ? "—" : `${data.duration_ms} ms`,
        error: truncate(data.error || "", 160),
      };
    },
  };
  document.querySelectorAll("[data-live-tail]").forEach((tail) => {
    const render = liveRenderers[tail.dataset.liveTail];
    if (!render || !window.WebSocket) return;
    const refresh = refreshers.get(tail.closest("[data-refresh]"));
    let delay = 1000;
    let waiting = null; // frames that arrive while the tail catches up
    const connected = (yes) => {
      if (yes) tail.dataset.liveState = "connected";
      else delete tail.dataset.liveState;
      const status = tail.querySelector("[data-live-status]");
      if (status) status.hidden = !yes;
    };
    const addRow = (data) => {
      const template = tail.querySelector("template[data-live-row]");
      const tbody = tail.querySelector("tbody");
      if (!template || !tbody) return;
      const id = String(data.id ?? "");
      if (id && [...tbody.rows].some((row) => row.dataset.id === id)) return; // already shown
      const row = template.content.firstElementChild.cloneNode(true);
      row.dataset.id = id;
      const values = render(data, row);
      row.querySelectorAll("[data-field]").forEach((cell) => {
        const value = String(values[cell.dataset.field] ?? "");
        cell.textContent = value;
        if (cell.dataset.href) cell.href = cell.dataset.href.replace("__id__", encodeURIComponent(value));
      });
      tbody.querySelector(".empty-row")?.remove();
      tbody.prepend(row);
      while (tbody.rows.length > LIVE_ROWS) tbody.deleteRow(-1);
    };
    const connect = () => {
      const socket = new WebSocket(tail.dataset.streamUrl);
      socket.addEventListener("message", async (message) => {
        const frame = JSON.parse(message.data);
        if (frame.type === "welcome") {
          socket.send(JSON.stringify({ type: "subscribe", channel: tail.dataset.channel }));
        } else if (frame.type === "subscribed") {
          delay = 1000;
          if (refresh) {
            // Rows recorded while the stream was down (or before the page loaded it).
            waiting = [];
            await refresh(true);
          }
          if (socket.readyState !== WebSocket.OPEN) return;
          connected(true);
          (waiting || []).forEach(addRow);
          waiting = null;
        } else if (frame.data) {
          if (waiting) waiting.push(frame.data);
          else addRow(frame.data);
        }
      });
      socket.addEventListener("close", () => {
        connected(false);
        waiting = null;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      });
    };
    connect();
  });
});
