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
  document.querySelectorAll("[data-refresh]").forEach((region) => {
    const seconds = Number(region.dataset.refresh) || 5;
    const url = region.dataset.refreshUrl;
    if (!url) {
      setInterval(() => { if (!document.hidden) window.location.reload(); }, seconds * 1000);
      return;
    }
    let busy = false;
    let last = null;
    const update = async () => {
      if (busy || document.hidden) return;
      // Do not swap the region under a pointer that is pressing one of its buttons.
      if (region.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
      busy = true;
      try {
        const response = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
        if (response.redirected) {
          // Signed out meanwhile: let the whole page go where the server sends it.
          window.location.reload();
        } else if (response.ok) {
          const html = await response.text();
          if (html !== last) {
            last = html;
            region.innerHTML = html;
          }
        }
      } catch {
        // Offline or the server restarted: try again at the next tick.
      } finally {
        busy = false;
      }
    };
    setInterval(update, seconds * 1000);
  });
  // Live tail: <div data-live-tail data-channel="events" data-stream-url="ws://…/v1/ws"> with a
  // <template data-live-row> row; each frame of the channel adds a row at the top of its table.
  // The stream authenticates with this page's session cookie; it reconnects after a drop.
  document.querySelectorAll("[data-live-tail]").forEach((region) => {
    const template = region.querySelector("template[data-live-row]");
    const tbody = region.querySelector("tbody");
    const status = region.querySelector("[data-live-status]");
    if (!template || !tbody || !window.WebSocket) return;
    let delay = 1000;
    const connect = () => {
      const socket = new WebSocket(region.dataset.streamUrl);
      socket.addEventListener("message", (message) => {
        const frame = JSON.parse(message.data);
        if (frame.type === "welcome") {
          socket.send(JSON.stringify({ type: "subscribe", channel: region.dataset.channel }));
        } else if (frame.type === "subscribed") {
          delay = 1000;
          if (status) status.hidden = false;
        } else if (frame.data) {
          addRow(frame.data);
        }
      });
      socket.addEventListener("close", () => {
        if (status) status.hidden = true;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      });
    };
    const addRow = (data) => {
      const row = template.content.firstElementChild.cloneNode(true);
      const values = {
        ...data,
        origin: data.source_id || data.topic_id || "",
        received_at: (data.received_at || "").replace("T", " ").slice(0, 19),
      };
      row.querySelectorAll("[data-field]").forEach((cell) => {
        cell.textContent = values[cell.dataset.field] ?? "";
        if (cell.dataset.href) cell.href = cell.dataset.href.replace("__id__", encodeURIComponent(values.id));
      });
      tbody.querySelector(".empty-row")?.remove();
      tbody.prepend(row);
      while (tbody.rows.length > 100) tbody.deleteRow(-1);
    };
    connect();
  });
});
