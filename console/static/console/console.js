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
});
