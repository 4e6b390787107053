/* Shared by every page: messages, the JSON API with the CSRF token, flash messages, sign-out. */
"use strict";
(function () {
  const messagesElement = document.getElementById("messages");
  const messages = messagesElement ? JSON.parse(messagesElement.textContent) : {};

  function message(key, values) {
    let text = messages[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", String(value));
    return text;
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* Call the JSON API; resolves to {ok, status, data, headers} and never throws on HTTP errors. */
  async function api(method, url, body) {
    const headers = {"Accept": "application/json"};
    if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (error) {
      return {ok: false, status: 0, data: {detail: message("network_error")}, headers: new Headers()};
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    return {ok: response.ok, status: response.status, data, headers: response.headers};
  }

  /* Send a multipart form (file uploads) to the API with the CSRF token; resolves like api(). */
  async function upload(url, form) {
    let response;
    try {
      response = await fetch(url, {method: "POST", headers: {"Accept": "application/json", "X-CSRF-Token": csrfToken()},
                                   credentials: "same-origin", body: form});
    } catch (error) {
      return {ok: false, status: 0, data: {detail: message("network_error")}, headers: new Headers()};
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    return {ok: response.ok, status: response.status, data, headers: response.headers};
  }

  /* A readable line for a failed call: the API's own detail, prefixed by what kind of failure it was. */
  function problem(result) {
    if (result.status === 401) { window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return ""; }
    let detail = result.data && result.data.detail;
    if (Array.isArray(detail)) detail = detail.map((item) => item.msg).join("; ");
    const prefix = result.status === 409 ? message("conflict") : result.status === 403 ? message("forbidden") : message("error");
    return detail ? prefix + ": " + detail : prefix;
  }

  function flash(text, kind) {
    const box = document.getElementById("flash");
    if (!box || !text) return;
    box.textContent = text;
    box.className = "flash " + (kind || "info");
    box.hidden = false;
  }

  function typingInField(event) {
    const target = event.target;
    return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  /* Reload the page (it is server-rendered) and show ``text`` once it is back (``kind``: ok unless given). */
  function reloadWith(text, kind) {
    try { sessionStorage.setItem("smokewatch-flash", JSON.stringify({text, kind: kind || "ok"})); } catch (error) { /* private mode */ }
    window.location.reload();
  }

  window.Smokewatch = {message, api, upload, problem, flash, typingInField, reloadWith};

  try {
    const pending = sessionStorage.getItem("smokewatch-flash");
    if (pending) {
      sessionStorage.removeItem("smokewatch-flash");
      let shown = {text: pending, kind: "ok"};
      try { shown = JSON.parse(pending); } catch (error) { /* a plain text from an older page */ }
      flash(shown.text, shown.kind);
    }
  } catch (error) { /* no storage */ }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await api("POST", "/api/auth/logout");
      window.location.href = "/login";
    });
  }
})();
