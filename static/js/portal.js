// Small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // An alert in the flash area, built with textContent so a message is never parsed as HTML.
  function showAlert(message, tone) {
    var area = document.getElementById("flash-oob");
    if (!area) return;
    var alert = document.createElement("div");
    alert.className = "alert alert-" + tone + " alert-dismissible fade show";
    alert.setAttribute("role", "alert");
    alert.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", "Close");
    alert.appendChild(close);
    area.appendChild(alert);
  }

  // htmx does not swap error answers, so without this a failed click would look like nothing happened.
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var message;
    if (status === 403) message = "You do not have access to do that.";
    else if (status === 404) message = "Not found — it may have been deleted, or it belongs to another tenant.";
    else if (status === 409) message = "That changed in the meantime. Reload the page and try again.";
    else message = "The request failed (HTTP " + status + "). The error was logged; try again or reload the page.";
    showAlert(message, "danger");
  });

  document.addEventListener("htmx:sendError", function () {
    showAlert("The portal could not be reached. Check your connection and try again.", "warning");
  });

  // <form data-confirm="Delete rack r01?"> asks before submitting (htmx requests use hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // A change in a wizard's field fires "preview-change" on its form (hx-trigger), except
  // in a field that sends its own htmx request (tenant and group re-render the wizard).
  // An htmx trigger filter would say this too, but filters need eval, which the CSP forbids.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.form || !window.htmx) return;
    if (field.hasAttribute("hx-post") || field.hasAttribute("hx-get")) return;
    if ((field.form.getAttribute("hx-trigger") || "").indexOf("preview-change") === -1) return;
    window.htmx.trigger(field.form, "preview-change");
  });

  // Focus across an in-place swap (the inline quota editor): an element swapped in with
  // data-swap-focus takes the focus (its first field to fix, or its first field); one that
  // replaces an element holding the focus gives it to its [data-return-focus] control.
  var focusWasIn = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    focusWasIn = target && target.id && target.contains(document.activeElement) ? target.id : null;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var id = target && target.id;
    var swapped = id ? document.getElementById(id) : null;
    if (!swapped) return;
    var into = null;
    if (swapped.hasAttribute("data-swap-focus")) {
      into = swapped.querySelector("[aria-invalid=true]") ||
        swapped.querySelector("input:not([type=hidden]), select, textarea");
    } else if (focusWasIn === id) {
      into = swapped.querySelector("[data-return-focus]");
    }
    focusWasIn = null;
    if (into) into.focus();
  });

  // <select data-autosubmit> submits its form on change; without JS a button does it.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) {
      field.form.requestSubmit();
    }
  });
})();
