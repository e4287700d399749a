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
  function renumber(table) {
    const path = table.dataset.table;
    const pattern = new RegExp("^" + path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "\\[(\\d+|__index__)\\]");
    table.querySelectorAll("tbody [data-row]").forEach(function (row, index) {
      const number = row.querySelector(".row-no");
      if (number) number.textContent = String(index + 1);
      row.querySelectorAll("[name]").forEach(function (el) {
        el.name = el.name.replace(pattern, path + "[" + index + "]");
      });
      row.querySelectorAll("[data-path]").forEach(function (el) {
        el.dataset.path = el.dataset.path.replace(pattern, path + "[" + index + "]");
      });
    });
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
      renumber(table);
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
    const xhr = new XMLHttpRequest();
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
