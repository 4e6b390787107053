/* Opening a complaint (举报) case through POST /api/complaints; times are entered in Beijing time. */
"use strict";
(function () {
  const {api, problem, flash} = window.Smokewatch;
  const form = document.getElementById("complaint-form");
  const site = document.getElementById("complaint-site");
  const camera = document.getElementById("complaint-camera");
  camera.addEventListener("change", () => {
    const option = camera.selectedOptions[0];
    if (option && option.dataset.site) site.value = option.dataset.site;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      source: document.getElementById("complaint-source").value,
      site: site.value || null,
      camera_id: camera.value || null,
      occurred_at: document.getElementById("complaint-occurred").value + ":00+08:00",
      description: document.getElementById("complaint-description").value,
      reporter_contact: document.getElementById("complaint-contact").value,
    };
    const result = await api("POST", "/api/complaints", body);
    if (result.ok) window.location.href = "/cases/" + result.data.id;
    else flash(problem(result), "error");
  });
})();
