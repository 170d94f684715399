/*
 * The schema page (/schema): Redoc, served from this package (no CDN, no fonts), over the
 * OpenAPI document at the URL in data-spec. The page itself holds no data and is public; the
 * document needs an API key unless TANDEM_PUBLIC_SCHEMA=1. The key is the playground's
 * (sessionStorage, this tab), or typed in here when the server asks for one.
 */
(function () {
  "use strict";
  var KEY_STORE = "tandem.playground.key";
  var root = document.getElementById("redoc-container");
  var form = document.getElementById("schema-key");
  var note = document.getElementById("schema-note");

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORE);
    } catch (e) {
      return null;
    }
  }

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function load(key) {
    var headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    say("Loading the API description…");
    return fetch(root.getAttribute("data-spec"), { headers: headers, credentials: "omit" })
      .then(function (r) {
        if (r.status === 401 || r.status === 403) {
          form.hidden = false;
          say(
            key
              ? "This API key was refused. Enter another one."
              : "This server needs an API key to show its API description."
          );
          return null;
        }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (spec) {
        if (!spec) return;
        form.hidden = true;
        say("");
        window.Redoc.init(spec, { hideDownloadButton: false }, root);
      })
      .catch(function (err) {
        say("The API description could not be loaded: " + err.message);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var key = form.elements.namedItem("key").value.trim();
    if (!key) return;
    try {
      window.sessionStorage.setItem(KEY_STORE, key);
    } catch (e) {
      /* storage off: use it for this load only */
    }
    load(key);
  });

  load(storedKey());
})();
