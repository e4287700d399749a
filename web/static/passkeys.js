// Passkeys: sign in on the login page, add one on the profile page. The server sends WebAuthn
// options as JSON and verifies the answers; this file only carries them to the browser's
// authenticator and back. Messages for the person come from data attributes (translated).
(function () {
  "use strict";

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function toBytes(value) {
    const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, function (c) { return c.charCodeAt(0); }).buffer;
  }

  function toText(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    bytes.forEach(function (b) { binary += String.fromCharCode(b); });
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Browsers without parse*FromJSON / toJSON get the same conversion by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    const options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    const options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const response = {};
    ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"].forEach(function (key) {
      if (credential.response[key]) response[key] = toText(credential.response[key]);
    });
    if (credential.response.getTransports) response.transports = credential.response.getTransports();
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment,
    };
  }

  async function post(url, body) {
    const answer = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrftoken": csrfToken(), accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try {
      data = await answer.json();
    } catch (e) {
      data = {};
    }
    return { ok: answer.ok, data: data };
  }

  function show(box, message) {
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.setAttribute("tabindex", "-1");
    box.focus();
  }

  function failed(error, element) {
    // The person closed the browser's dialog or no authenticator answered in time.
    if (error && error.name === "NotAllowedError") return element.dataset.cancelled;
    if (error && error.name === "InvalidStateError") return element.dataset.duplicate || element.dataset.failed;
    return element.dataset.failed;
  }

  function initSignIn() {
    const button = document.getElementById("passkey-sign-in");
    if (!button) return;
    const box = document.getElementById("passkey-error");
    if (!window.PublicKeyCredential) return;
    button.hidden = false;
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        const options = await post("/auth/passkey/options");
        if (!options.ok) throw new Error(options.data.detail || button.dataset.failed);
        const credential = await navigator.credentials.get({ publicKey: requestOptions(options.data) });
        const answer = await post("/auth/passkey/sign-in", {
          credential: credentialJSON(credential),
          next: button.dataset.next || "/",
        });
        if (answer.ok && answer.data.redirect) {
          window.location.assign(answer.data.redirect);
          return;
        }
        show(box, answer.data.detail || button.dataset.failed);
      } catch (error) {
        show(box, error && error.name ? failed(error, button) : (error.message || button.dataset.failed));
      } finally {
        button.disabled = false;
      }
    });
  }

  function initRegister() {
    const form = document.getElementById("passkey-register");
    if (!form) return;
    const box = document.getElementById("passkey-error");
    if (!window.PublicKeyCredential) {
      show(box, form.dataset.unsupported);
      form.hidden = true;
      return;
    }
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const options = await post("/profile/passkeys/options");
        if (!options.ok) {
          show(box, options.data.detail || form.dataset.failed);
          return;
        }
        const credential = await navigator.credentials.create({ publicKey: creationOptions(options.data) });
        const name = form.querySelector("[name=name]").value;
        const answer = await post("/profile/passkeys", { credential: credentialJSON(credential), name: name });
        if (!answer.ok) {
          show(box, answer.data.detail || form.dataset.failed);
          return;
        }
        window.location.assign("/profile?added=1#passkeys");
      } catch (error) {
        show(box, failed(error, form));
      } finally {
        button.disabled = false;
      }
    });
  }

  initSignIn();
  initRegister();
})();
