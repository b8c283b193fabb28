// Progressive enhancement of the console's forms; every form works without this file.
document.addEventListener("DOMContentLoaded", () => {
  // Fields used by some choices only: <div data-show-when="cfg_auth_type" data-show-values="basic">
  // shows while the form's field cfg_auth_type has one of the (space-separated) values.
  // Hidden fields are still submitted; the server ignores those of the other choices.
  document.querySelectorAll("form").forEach((form) => {
    const dependents = form.querySelectorAll("[data-show-when]");
    if (!dependents.length) return;
    const update = () => {
      dependents.forEach((wrapper) => {
        const deciding = form.elements[wrapper.dataset.showWhen];
        if (!deciding) return;
        const wanted = wrapper.dataset.showValues.split(" ");
        wrapper.hidden = !wanted.includes(deciding.value);
      });
    };
    const deciders = new Set([...dependents].map((wrapper) => wrapper.dataset.showWhen));
    deciders.forEach((name) => form.elements[name]?.addEventListener("change", update));
    update();
  });

  // "Test against an event" (console/routes/_tester.html): the Test button posts its route
  // form to the tester (its formaction) and shows the answer, an HTML fragment, below it.
  // Without JavaScript the same button posts the form and the answer is a page.
  document.querySelectorAll("[data-route-tester]").forEach((tester) => {
    const button = tester.querySelector("[data-route-test]");
    const output = tester.querySelector("[data-route-test-result]");
    const form = button?.form;
    if (!form || !output) return;
    button.addEventListener("click", async (click) => {
      click.preventDefault();
      button.disabled = true;
      output.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(button.formAction, {
          method: "POST",
          body: new FormData(form),
          headers: { "X-Requested-With": "fetch" },
          credentials: "same-origin",
        });
        if (response.ok || response.status === 400) {
          output.innerHTML = await response.text();
        } else {
          output.textContent = response.status === 404
            ? "That event is not one of this organization's: choose another."
            : `The test could not run (HTTP ${response.status}); try again.`;
        }
      } catch {
        output.textContent = "The test could not run (no answer from the server); try again.";
      } finally {
        button.disabled = false;
        output.removeAttribute("aria-busy");
      }
    });
    // A connection form: another source chosen offers that source's recent events.
    const source = form.elements.source_id;
    const picker = form.elements.test_event_id;
    if (source && picker && source.tagName === "SELECT") {
      source.addEventListener("change", async () => {
        const url = `${tester.dataset.eventsUrl}?source_id=${encodeURIComponent(source.value)}`;
        try {
          const response = await fetch(url, { credentials: "same-origin" });
          if (response.ok && !response.redirected) picker.innerHTML = await response.text();
        } catch {
          // Keep the events offered so far.
        }
      });
    }
  });
});
