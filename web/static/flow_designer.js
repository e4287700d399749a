// Flow designer: an assignee rule shows only the settings its kind uses, and on a phone the
// panel of the step just opened scrolls into view. Loaded with every designer render; the
// listeners are registered once.
(function () {
  "use strict";
  if (window.formflowFlowDesigner) return;
  window.formflowFlowDesigner = true;

  document.addEventListener("change", function (event) {
    const select = event.target.closest("select[data-rule-kind]");
    if (!select) return;
    select.closest("fieldset").querySelectorAll("[data-rule-kinds]").forEach(function (label) {
      label.hidden = label.dataset.ruleKinds.split(" ").indexOf(select.value) < 0;
    });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const designer = document.getElementById("flow-designer");
    if (!designer || !designer.contains(event.detail.elt) && event.detail.elt !== designer) return;
    const panel = designer.querySelector(".flow-panel");
    if (panel && window.matchMedia("(max-width: 959px)").matches && !designer.querySelector("[role=alert]")) {
      panel.scrollIntoView({ block: "start" });
    }
  });
})();
