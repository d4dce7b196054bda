// ?embed=1 renders without navigation chrome: mark the document before React draws anything,
// so an embedding portal never sees the menu flash.
//
// Every Dash request carries X-Shopper-Lang, the page's <html lang> (set by the server from
// ?lang=, Accept-Language or DEFAULT_LANG): callbacks have no query string, and they must
// answer in the language the page was drawn in (dashboard/language.py).
//
// ?token=... is a signed embed link (dashboard/auth/embed.py). A portal frames the app from
// another site, where browsers may block cookies and storage (Chromium blocks
// sessionStorage/localStorage in such frames too), so the token lives only in this closure:
// read once from the address, and sent as X-Embed-Token on every Dash request. Dash's
// renderer uses fetch() for _dash-layout, _dash-dependencies and _dash-update-component, and
// asset scripts run before it starts, so wrapping fetch here covers all of them.
(function () {
  var params = new URLSearchParams(window.location.search);
  var embedded = params.get("embed") === "1";
  var token = params.get("token") || null;
  if (embedded) {
    document.documentElement.classList.add("embed");
  }
  // url_state.js keeps these in the address when it rewrites it (so a reload of the frame
  // still works, even after an in-app link dropped the query)
  window.shopperEmbed = Object.freeze({ embedded: embedded, token: token });
  if (typeof window.fetch !== "function") {
    return;
  }

  var HEADER = "X-Embed-Token";
  var LANG_HEADER = "X-Shopper-Lang";
  var nativeFetch = window.fetch;
  var refused = false;

  function isRequest(input) {
    return typeof Request !== "undefined" && input instanceof Request;
  }

  function dashRequest(input) {
    var raw = isRequest(input) ? input.url : String(input);
    var url;
    try {
      url = new URL(raw, window.location.href);
    } catch (e) {
      return false;
    }
    // never hand the token to another origin
    return url.origin === window.location.origin && url.pathname.indexOf("/_dash-") !== -1;
  }

  // The token expired (or the key changed) while the page was open: the gate answers 401.
  // Say so in place of the dashboard, once; a reload then shows the server's expired page.
  function showRefusal(response) {
    if (refused) {
      return;
    }
    refused = true;
    response.clone().json().then(function (body) {
      return body && typeof body.message === "string" ? body.message : null;
    }, function () {
      return null;
    }).then(function (message) {
      var box = document.createElement("div");
      box.className = "alert alert-warning m-3 embed-refusal";
      box.setAttribute("role", "alert");
      box.textContent = message ||
        "This embedded view's link is no longer valid; reload the portal page to get a new one.";
      var root = document.getElementById("react-entry-point");
      if (root) {
        root.style.display = "none";
      }
      document.body.insertBefore(box, document.body.firstChild);
    });
  }

  window.fetch = function (input, init) {
    if (!dashRequest(input)) {
      return nativeFetch.apply(this, arguments);
    }
    var options = Object.assign({}, init || {});
    var base = options.headers || (isRequest(input) ? input.headers : undefined);
    var headers = new Headers(base);
    if (document.documentElement.lang) {
      headers.set(LANG_HEADER, document.documentElement.lang);
    }
    if (!token) {
      options.headers = headers;
      return nativeFetch.call(this, input, options);
    }
    headers.set(HEADER, token);
    options.headers = headers;
    return nativeFetch.call(this, input, options).then(function (response) {
      if (response.status === 401) {
        showRefusal(response);
      }
      return response;
    });
  };
})();
