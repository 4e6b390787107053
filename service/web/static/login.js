/* Sign-in through POST /api/auth/login, with the API's error and rate-limit answers shown. */
"use strict";
(function () {
  const {api, message} = window.Smokewatch;
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await api("POST", "/api/auth/login", {username: form.username.value, password: form.password.value});
    button.disabled = false;
    if (result.ok) {
      window.location.href = form.dataset.next || "/queue";
      return;
    }
    let text;
    if (result.status === 429) {
      const seconds = Number(result.headers.get("Retry-After")) || 60;
      text = message("login_blocked", {minutes: Math.ceil(seconds / 60)});
    } else if (result.status === 401) {
      text = message("login_failed");
    } else if (result.status === 0) {
      text = message("network_error");
    } else {
      text = message("login_refused") + ((result.data && typeof result.data.detail === "string") ? ": " + result.data.detail : "");
    }
    error.textContent = text;
    error.hidden = false;
    form.password.select();
  });
})();
