/* The review queue: keyboard moves between rows, row selection, bulk dismiss through the API. */
"use strict";
(function () {
  const {api, problem, flash, message, typingInField} = window.Smokewatch;
  const rows = Array.from(document.querySelectorAll(".case-row"));
  const boxes = () => Array.from(document.querySelectorAll(".row-select"));
  const counter = document.getElementById("selected-count");
  let current = -1;

  function updateCount() {
    if (counter) counter.textContent = message("selected_count", {count: boxes().filter((box) => box.checked).length});
  }

  function focusRow(index) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("focused", i === current));
    rows[current].focus();
    rows[current].scrollIntoView({block: "nearest"});
  }

  document.addEventListener("keydown", (event) => {
    if (typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" || event.key === "ArrowDown") { focusRow(current + 1); event.preventDefault(); }
    else if (event.key === "k" || event.key === "ArrowUp") { focusRow(current - 1); event.preventDefault(); }
    else if ((event.key === "Enter" || event.key === "o") && current >= 0) { window.location.href = rows[current].dataset.href; event.preventDefault(); }
    else if (event.key === "x" && current >= 0) {
      const box = rows[current].querySelector(".row-select");
      if (box) { box.checked = !box.checked; updateCount(); }
      event.preventDefault();
    }
  });

  rows.forEach((row, index) => row.addEventListener("click", (event) => {
    if (event.target instanceof HTMLElement && event.target.closest("a, input, button")) return;
    focusRow(index);
  }));
  boxes().forEach((box) => box.addEventListener("change", updateCount));
  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => { boxes().forEach((box) => { box.checked = all.checked; }); updateCount(); });

  const form = document.getElementById("bulk-form");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ids = boxes().filter((box) => box.checked).map((box) => Number(box.value));
      if (!ids.length) { flash(message("nothing_selected"), "error"); return; }
      const reason = document.getElementById("bulk-reason").value;
      const text = document.getElementById("bulk-text").value.trim();
      const result = await api("POST", "/api/cases/bulk-dismiss", {case_ids: ids, reason, text});
      if (result.ok) window.location.reload();
      else flash(problem(result), "error");
    });
  }
})();
