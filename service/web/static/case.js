/* The case page: keyboard-driven review (play, seek, next/previous, confirm, dismiss) and the forms, all via the JSON API. */
"use strict";
(function () {
  const {api, upload, problem, flash, message, typingInField, reloadWith} = window.Smokewatch;
  const page = document.getElementById("case-page");
  const caseId = page.dataset.caseId;
  const allowed = new Set(page.dataset.allowed.split(" ").filter(Boolean));
  const canReview = page.dataset.canReview === "yes";
  const video = document.getElementById("clip");
  const dismissPanel = document.getElementById("dismiss-panel");
  const otherForm = document.getElementById("other-form");
  const otherText = document.getElementById("other-text");
  const reasons = Array.from(document.querySelectorAll(".reason")).map((button) => button.dataset.reason);
  const SEEK_SECONDS = 5;
  let choosingReason = false;
  let busy = false;

  async function step(path, body) {
    if (busy) return;
    busy = true;
    const result = await api("POST", "/api/cases/" + caseId + "/" + path, body);
    busy = false;
    if (result.ok) reloadWith(message("saved"));
    else flash(problem(result), "error");
  }

  /* Create a note or action, then attach the chosen file (if any) to the new entry: the newest one in the answer. */
  async function stepThenAttach(path, body, fileInputId, list, ownerField) {
    const input = document.getElementById(fileInputId);
    const file = input && input.files.length ? input.files[0] : null;
    if (!file) { await step(path, body); return; }
    if (busy) return;
    busy = true;
    const result = await api("POST", "/api/cases/" + caseId + "/" + path, body);
    if (!result.ok) { busy = false; flash(problem(result), "error"); return; }
    const entries = result.data[list] || [];
    const owner = Math.max(...entries.map((entry) => entry.id));
    const form = new FormData();
    form.append(ownerField, String(owner));
    form.append("file", file, file.name);
    const uploaded = await upload("/api/cases/" + caseId + "/attachments", form);
    busy = false;
    if (uploaded.ok) reloadWith(message("saved"));
    else reloadWith(message("attachment_failed") + " " + problem(uploaded), "error");
  }

  function togglePlay() {
    if (!video) return;
    if (video.paused || video.ended) video.play().catch((error) => flash(message("error") + ": " + error.message, "error"));
    else video.pause();
  }

  function seek(seconds) {
    if (!video) return;
    const end = Number.isFinite(video.duration) ? video.duration : video.currentTime + Math.max(0, seconds);
    video.currentTime = Math.max(0, Math.min(end, video.currentTime + seconds));
  }

  function go(linkId) {
    const link = document.getElementById(linkId);
    if (link) window.location.href = link.href;
  }

  function startDismiss() {
    if (!canReview || !allowed.has("dismiss")) return;
    choosingReason = true;
    dismissPanel.hidden = false;
    otherForm.hidden = true;
  }

  function stopDismiss() {
    choosingReason = false;
    dismissPanel.hidden = true;
    otherForm.hidden = true;
  }

  function chooseReason(reason) {
    if (reason === "other") {
      otherForm.hidden = false;
      otherText.focus();
      return;
    }
    stopDismiss();
    step("dismiss", {reason});
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { stopDismiss(); if (typingInField(event)) event.target.blur(); return; }
    if (typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (choosingReason) {  // only a reason number (or Esc) until the dismissal is chosen or cancelled
      const reason = /^[1-9]$/.test(event.key) ? reasons[Number(event.key) - 1] : undefined;
      if (reason) { event.preventDefault(); chooseReason(reason); }
      return;
    }
    const actions = {
      " ": togglePlay, "k": togglePlay,
      "j": () => seek(-SEEK_SECONDS), "ArrowLeft": () => seek(-SEEK_SECONDS),
      "l": () => seek(SEEK_SECONDS), "ArrowRight": () => seek(SEEK_SECONDS),
      "n": () => go("next-case"), "p": () => go("previous-case"),
      "c": () => { if (canReview && allowed.has("confirm")) step("confirm", {}); },
      "d": startDismiss,
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });

  document.querySelectorAll(".reason").forEach((button) => button.addEventListener("click", () => chooseReason(button.dataset.reason)));
  otherForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = otherText.value.trim();
    if (!text) { otherText.focus(); return; }
    stopDismiss();
    step("dismiss", {reason: "other", text});
  });

  const on = (id, type, handler) => { const element = document.getElementById(id); if (element) element.addEventListener(type, handler); };
  on("confirm-button", "click", () => step("confirm", {}));
  on("dismiss-button", "click", startDismiss);
  on("close-button", "click", () => step("close", {}));
  on("reopen-form", "submit", (event) => {
    event.preventDefault();
    step("reopen", {reason: document.getElementById("reopen-reason").value});
  });
  on("action-form", "submit", (event) => {
    event.preventDefault();
    const persons = document.getElementById("action-persons").value;
    const venue = document.getElementById("action-venue").value.trim();
    stepThenAttach("actions", {
      kind: document.getElementById("action-kind").value,
      notes: document.getElementById("action-notes").value,
      person_count: persons === "" ? null : Number(persons),
      venue_name: venue || null,
    }, "action-file", "actions", "action_id");
  });
  on("note-form", "submit", (event) => {
    event.preventDefault();
    stepThenAttach("notes", {text: document.getElementById("note-text").value}, "note-file", "notes", "note_id");
  });
  on("assign-form", "submit", (event) => {
    event.preventDefault();
    const value = document.getElementById("assign-user").value;
    step("assign", {user_id: value === "" ? null : Number(value)});
  });
})();
