// The department choices depend on the body, and the server sends only the chosen body's.
// When the body changes, clear and disable the department select (its options belong to the
// old body) and say that searching will load the new body's departments. No auto-submit: a
// select that reloads the page on change surprises keyboard and screen-reader users.
(function () {
  "use strict";
  document.querySelectorAll("form[data-body-filter]").forEach(function (form) {
    var body = form.elements.namedItem("body");
    var department = form.elements.namedItem("department");
    var hint = form.querySelector("[data-department-hint]");
    if (!body || !department) {
      return;
    }
    var initialBody = body.value;
    body.addEventListener("change", function () {
      var changed = body.value !== initialBody;
      if (changed) {
        department.value = "";
      }
      department.disabled = changed || body.value === "";
      if (hint) {
        hint.hidden = !changed || body.value === "";
        if (!hint.hidden) {
          department.setAttribute("aria-describedby", hint.id);
        } else {
          department.removeAttribute("aria-describedby");
        }
      }
    });
  });
})();
