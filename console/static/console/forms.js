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
});
