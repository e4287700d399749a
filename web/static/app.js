// Formflow page behaviour that htmx does not cover: the phone menu, detail-table rows,
// conditional fields shown or hidden after the server re-evaluates, and file uploads with
// a progress bar. Every action is a real button, so the keyboard reaches all of it.
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function changed(form) {
    if (form) form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Phone menu.
  function initMenu() {
    const toggle = document.querySelector(".nav-toggle");
    const nav = document.getElementById("main-nav");
    if (!toggle || !nav) return;
    toggle.addEventListener("click", function () {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  // Detail tables: add and remove rows; names carry the row index.
  function numberRow(table, row, index) {
    const path = table.dataset.table;
    const pattern = new RegExp("^" + path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "\\[(\\d+|__index__)\\]");
    const number = row.querySelector(".row-no");
    if (number) number.textContent = String(index + 1);
    row.querySelectorAll("[name]").forEach(function (el) {
      el.name = el.name.replace(pattern, path + "[" + index + "]");
    });
    row.querySelectorAll("[data-path]").forEach(function (el) {
      el.dataset.path = el.dataset.path.replace(pattern, path + "[" + index + "]");
    });
  }

  function renumber(table) {
    table.querySelectorAll("tbody [data-row]").forEach(function (row, index) { numberRow(table, row, index); });
  }

  function fixIds(root, table) {
    // Ids in a fresh row come from the template's "__index__": make them unique per row.
    const stamp = String(Date.now()) + Math.floor(Math.random() * 1000);
    root.querySelectorAll("[id]").forEach(function (el) { el.id = el.id.replace("__index__", "n" + stamp); });
    root.querySelectorAll("label[for]").forEach(function (el) {
      el.htmlFor = el.htmlFor.replace("__index__", "n" + stamp);
    });
  }

  document.addEventListener("click", function (event) {
    const add = event.target.closest("[data-add-row]");
    if (add) {
      const table = add.closest("[data-table]");
      const template = table.querySelector("template[data-row-template]");
      const body = table.querySelector("tbody[data-rows]");
      const row = template.content.firstElementChild.cloneNode(true);
      fixIds(row, table);
      body.appendChild(row);
      numberRow(table, row, body.querySelectorAll(":scope > [data-row]").length - 1); // the rows above keep theirs
      const first = row.querySelector("input, select, textarea");
      if (first) first.focus();
      changed(add.closest("form"));
      return;
    }
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      const table = remove.closest("[data-table]");
      const form = remove.closest("form");
      remove.closest("[data-row]").remove();
      renumber(table);
      const next = table.querySelector("[data-add-row]");
      if (next) next.focus();
      changed(form);
    }
  });

  // Conditional fields: the server tells which paths are hidden after each change.
  function applyState() {
    const state = document.getElementById("form-state");
    if (!state) return;
    let hidden = [];
    try { hidden = JSON.parse(state.dataset.hidden || "[]"); } catch (e) { hidden = []; }
    const set = new Set(hidden);
    document.querySelectorAll("[data-conditional]").forEach(function (el) {
      el.hidden = set.has(el.dataset.path);
    });
  }
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail && event.detail.target && event.detail.target.id === "form-state") applyState();
  });

  // Re-evaluation after a change names the input that changed, so the server answers only the
  // cells, totals and words that input can alter (not every row of a long detail table).
  document.addEventListener("htmx:configRequest", function (event) {
    const detail = event.detail;
    if (!detail || !/\/evaluate$/.test(detail.path || "")) return;
    const source = detail.triggeringEvent && detail.triggeringEvent.target;
    const name = source && !(source instanceof HTMLFormElement) ? source.getAttribute("name") : "";
    if (name) detail.headers["X-Formflow-Changed"] = name;
  });

  // Uploads: each file goes to /api/v1/attachments with a progress bar; the hidden input
  // keeps the list of uploaded files as JSON, which the form posts.
  function uploadList(widget) {
    const input = widget.querySelector("[data-upload-value]");
    try { return JSON.parse(input.value || "[]"); } catch (e) { return []; }
  }

  function saveList(widget, items) {
    widget.querySelector("[data-upload-value]").value = JSON.stringify(items);
    changed(widget.closest("form"));
  }

  function renderItem(widget, item) {
    const li = document.createElement("li");
    li.dataset.id = item.id;
    li.textContent = item.name + " ";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = widget.dataset.removeLabel || "×";
    button.setAttribute("aria-label", (widget.dataset.removeLabel || "Remove") + " " + item.name);
    button.addEventListener("click", function () {
      saveList(widget, uploadList(widget).filter(function (a) { return a.id !== item.id; }));
      li.remove();
    });
    li.appendChild(button);
    widget.querySelector("[data-upload-list]").appendChild(li);
  }

  function upload(widget, file) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    li.append(label, " ", bar);
    widget.querySelector("[data-upload-list]").appendChild(li);
    const data = new FormData();
    data.append("file", file, file.name);
    const form = widget.closest("form");
    uploading(form, +1);
    const xhr = new XMLHttpRequest();
    xhr.addEventListener("loadend", function () { uploading(form, -1); });
    xhr.open("POST", "/api/v1/attachments");
    xhr.setRequestHeader("x-csrftoken", csrfToken());
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
    });
    xhr.addEventListener("load", function () {
      li.remove();
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      if (xhr.status === 201) {
        const items = uploadList(widget);
        const item = { id: body.id, name: body.name, size: body.size, content_type: body.content_type };
        items.push(item);
        saveList(widget, items);
        renderItem(widget, item);
      } else {
        const error = document.createElement("li");
        error.className = "field-error";
        error.setAttribute("role", "alert");
        error.textContent = file.name + ": " + (body.detail || xhr.statusText);
        widget.querySelector("[data-upload-list]").appendChild(error);
      }
    });
    xhr.addEventListener("error", function () {
      bar.replaceWith(document.createTextNode(" ✗"));
    });
    xhr.send(data);
  }

  function uploading(form, delta) {
    if (!form) return;
    const count = Math.max(0, Number(form.dataset.uploading || 0) + delta);
    form.dataset.uploading = String(count);
    if (count === 0) {
      const note = form.querySelector("[data-uploading-note]");
      if (note) note.remove();
    }
  }

  // A form posts once: a second click while the first is on its way, or a click while files
  // are still uploading (they would be missing from the request), is held back with a note.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return; // htmx sends it
    if (Number(form.dataset.uploading || 0) > 0) {
      event.preventDefault();
      if (!form.querySelector("[data-uploading-note]")) {
        const note = document.createElement("p");
        note.className = "alert warn";
        note.setAttribute("role", "alert");
        note.dataset.uploadingNote = "";
        const widget = form.querySelector("[data-upload]");
        note.textContent = (widget && widget.dataset.uploadingMessage) || "Files are still uploading.";
        const actions = form.querySelector(".form-actions") || form;
        actions.prepend(note);
      }
      return;
    }
    if (form.dataset.submitting) {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "1";
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) { delete form.dataset.submitting; });
  });

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
    const widget = input.closest("[data-upload]");
    if (!widget) return;
    event.stopPropagation(); // the file list itself is not form data; the hidden JSON is
    Array.from(input.files || []).forEach(function (file) { upload(widget, file); });
    input.value = "";
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    initMenu();
    document.querySelectorAll("[data-upload]").forEach(function (widget) {
      widget.querySelectorAll("[data-upload-list] li").forEach(function (li) { li.remove(); });
      uploadList(widget).forEach(function (item) { renderItem(widget, item); });
    });
  });
})();

// Work pages: a refused action (403, 404, 409, 422, 429) comes back with X-Formflow-Message and
// a message to show beside the form it came from; htmx drops 4xx answers unless told otherwise.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    const xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("X-Formflow-Message")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Move focus to a message that just appeared, so keyboard and screen-reader users hear it.
  document.addEventListener("htmx:afterSwap", function (event) {
    const alert = event.detail.target && event.detail.target.querySelector("[role=alert]");
    if (alert) {
      alert.setAttribute("tabindex", "-1");
      alert.focus();
    }
  });
  // The print view's button.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
})();
