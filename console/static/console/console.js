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
  // Auto-refresh regions: <div data-refresh="5">; reloads the page while it is visible.
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) {
    const seconds = Number(refresh.dataset.refresh) || 5;
    setInterval(() => { if (!document.hidden) window.location.reload(); }, seconds * 1000);
  }
});
