// The template designer's page behaviour. The server holds the draft and answers each action
// with the property panel and, out of band, only the canvas cards that changed; this file only
// reports drops (SortableJS) as the same small POSTs the buttons send, keeps the focus where it
// was across re-renders, composes CEL conditions from the condition builder, binds
// Ctrl+Z / Ctrl+Y, and switches the preview between desktop and phone widths.
(function () {
  "use strict";

  function workspace() {
    return document.getElementById("designer-workspace");
  }

  function send(verb, path, values) {
    const ws = workspace();
    if (!ws) return;
    const version = document.getElementById("row-version");
    const chosen = document.getElementById("designer-selected");
    values.row_version = version ? version.value : "";
    values.was = chosen ? chosen.value : "";
    window.htmx.ajax(verb, "/designer/" + ws.dataset.key + path, {
      source: ws,
      target: "#designer-panel",
      swap: "outerHTML settle:0ms", // nothing here fades in: show the answer at once
      values: values,
    });
  }

  function post(path, values) {
    send("POST", path, values);
  }

  // The buttons on each field card (choose, move up or down, delete) are handled here rather than
  // by htmx attributes on every card: a form may have hundreds of cards.
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("[data-act]");
    if (!button || button.disabled || !workspace()) return;
    const card = button.closest("[data-ref]");
    if (!card) return;
    const act = button.dataset.act;
    if (act === "select") {
      send("GET", "/fields/select", { ref: card.dataset.ref });
    } else if (act === "move") {
      // The place is counted here, so a move redraws only the cards it changes, not their neighbours.
      const cards = Array.from(card.parentElement.children).filter(function (el) {
        return el.classList.contains("field-card");
      });
      const index = cards.indexOf(card) + Number(button.dataset.step);
      post("/fields/move", { ref: card.dataset.ref, index: index, table: button.dataset.table || "" });
    } else if (act === "remove" && window.confirm(button.dataset.confirm)) {
      post("/fields/remove", { ref: card.dataset.ref });
    }
  });

  // -- drag and drop --------------------------------------------------------------------------
  function initSortable(root) {
    if (typeof window.Sortable === "undefined") return;
    const scope = root.querySelectorAll ? root : document;
    const lists = [];
    if (scope.matches && scope.matches("[data-palette], [data-sortable]")) lists.push(scope);
    scope.querySelectorAll("[data-palette], [data-sortable]").forEach(function (el) { lists.push(el); });
    lists.forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      if (list.hasAttribute("data-palette")) {
        window.Sortable.create(list, {
          group: { name: "fields", pull: "clone", put: false },
          sort: false,
          animation: 120,
          forceFallback: true,
        });
        return;
      }
      window.Sortable.create(list, {
        group: { name: "fields", pull: true, put: true },
        handle: ".card-head",
        draggable: ".field-card",
        animation: 120,
        forceFallback: true,
        fallbackOnBody: true,
        swapThreshold: 0.65,
        onAdd: function (evt) {
          if (evt.pullMode !== "clone") return; // a move between lists is reported by onEnd
          const kind = evt.item.dataset.kind;
          evt.item.remove();
          post("/fields", { kind: kind, index: evt.newIndex, table: evt.to.dataset.table || "" });
        },
        onEnd: function (evt) {
          if (evt.from === evt.to && evt.oldIndex === evt.newIndex) return;
          post("/fields/move", {
            ref: evt.item.dataset.ref,
            index: evt.newIndex,
            table: evt.to.dataset.table || "",
          });
        },
      });
    });
  }

  // -- focus across re-renders ----------------------------------------------------------------
  let focusKey = null;
  function keyOf(el) {
    if (!el || el === document.body) return null;
    if (el.id) return "#" + el.id;
    const card = el.closest("[data-ref]");
    const label = el.getAttribute("aria-label") || el.textContent.trim();
    return card ? { ref: card.dataset.ref, label: label } : null;
  }
  document.addEventListener("htmx:beforeRequest", function () {
    focusKey = keyOf(document.activeElement);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    const swapped = event.detail.target;
    if (!swapped || (swapped.id !== "designer-panel" && swapped.id !== "designer-preview")) return;
    if (!focusKey) return;
    let target = null;
    if (typeof focusKey === "string") {
      target = document.querySelector(focusKey);
    } else {
      const card = document.querySelector('[data-ref="' + CSS.escape(focusKey.ref) + '"]');
      if (card) {
        target = Array.from(card.querySelectorAll("button")).find(function (b) {
          return (b.getAttribute("aria-label") || b.textContent.trim()) === focusKey.label && !b.disabled;
        }) || card.querySelector(".card-select");
      }
    }
    if (target && document.activeElement !== target) target.focus();
    focusKey = null;
  });

  // -- the visual condition builder -----------------------------------------------------------
  function literal(type, text) {
    const value = text.trim();
    if (type === "number" || type === "money" || type === "computed") {
      return /^-?\d+(\.\d+)?$/.test(value) ? value : JSON.stringify(value);
    }
    if (type === "switch") return /^(true|1|是|on)$/i.test(value) ? "true" : "false";
    if (type === "date") return 'timestamp("' + value + 'T00:00:00Z")';
    return JSON.stringify(value);
  }

  document.addEventListener("click", function (event) {
    const add = event.target.closest && event.target.closest("[data-cel-add]");
    if (add) {
      const builder = add.closest("[data-cel-for]");
      const input = document.getElementById(builder.dataset.celFor);
      const field = builder.querySelector("[data-cel-field]");
      const chosen = field.options[field.selectedIndex];
      if (!input || !chosen) return;
      const type = chosen.dataset.type;
      const op = builder.querySelector("[data-cel-op]").value;
      const value = builder.querySelector("[data-cel-value]").value;
      let condition;
      if (type === "multi_select" || type === "checkbox") {
        condition = (op === "!=" ? "!(" : "") + JSON.stringify(value.trim()) + " in " + chosen.value + (op === "!=" ? ")" : "");
      } else {
        condition = chosen.value + " " + op + " " + literal(type, value);
      }
      input.value = input.value.trim() ? input.value.trim() + " && " + condition : condition;
      input.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    const width = event.target.closest && event.target.closest("[data-preview-width]");
    if (width) {
      const frame = document.querySelector("[data-preview-frame]");
      if (frame) frame.classList.toggle("phone", width.dataset.previewWidth === "phone");
      const kept = document.querySelector("[data-preview-width-value]");
      if (kept) kept.value = width.dataset.previewWidth;
      document.querySelectorAll("[data-preview-width]").forEach(function (b) {
        b.setAttribute("aria-pressed", String(b === width));
      });
    }
  });

  // -- keyboard shortcuts ---------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || !workspace()) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    const key = event.key.toLowerCase();
    let which = null;
    if (key === "z" && !event.shiftKey) which = "undo";
    else if (key === "y" || (key === "z" && event.shiftKey)) which = "redo";
    if (!which) return;
    const button = document.querySelector('[data-shortcut="' + which + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });

  function ready() {
    initSortable(document);
    if (window.htmx) window.htmx.onLoad(function (el) { initSortable(el); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
