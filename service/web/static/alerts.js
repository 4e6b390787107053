/* The alert deliveries page: send a failed (or sent) alert again through the JSON API. */
"use strict";
(function () {
  const {api, problem, flash, message, reloadWith} = window.Smokewatch;
  document.querySelectorAll(".retry-button").forEach((button) => button.addEventListener("click", async () => {
    button.disabled = true;
    const result = await api("POST", "/api/alerts/deliveries/" + button.dataset.deliveryId + "/retry");
    if (result.ok) { reloadWith(message("retry_queued")); return; }
    button.disabled = false;
    flash(problem(result), "error");
  }));
})();
