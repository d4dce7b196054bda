// Two-way filter sync with a portal that frames the dashboard (the format: docs/portal.md).
//
// portal -> dashboard  {type: "shopper:set-filters", query: "segment=1&details=yes", page?: "/carts"}
// dashboard -> portal  {type: "shopper:ready" | "shopper:filters-changed", page, query, lang}
//                      {type: "shopper:refused", page, requested, message}
//
// Only messages from the parent window whose origin FRAME_ANCESTORS allows are read (the
// patterns come from dashboard/portal.py in <meta name="shopper-portal">); anything else is
// dropped with a console.debug line. A set-filters query is applied by navigating within the
// app, so the server parses it like any link: nothing in a message is trusted beyond that.
(function () {
  if (window.parent === window) {
    return;   // not framed: no portal to talk to
  }
  var SET = "shopper:set-filters";
  var MAX_QUERY = 4000;   // what the server reads of a stored query (dashboard/filters.py query_dict)
  var PAGE = /^\/(?!\/)[A-Za-z0-9._~\/-]*$/;   // a path of this app, as in dashboard/auth/embed.py
  var DEFAULT_PORTS = { "http:": "80", "https:": "443" };

  var config = { origins: [], prefix: "/" };
  var meta = document.querySelector('meta[name="shopper-portal"]');
  try {
    config = Object.assign(config, JSON.parse(meta ? meta.content : "{}"));
  } catch (e) {
    console.debug("Shopper Insights: unreadable portal settings; portal messages are off", e);
  }

  function parseOrigin(origin) {
    var m = /^([a-z][a-z0-9+.-]*:)\/\/([^\/:]+)(?::(\d+))?$/.exec(String(origin));
    return m ? { scheme: m[1], host: m[2], port: m[3] || DEFAULT_PORTS[m[1]] || "" } : null;
  }

  // One pattern of dashboard/portal.py against one origin, with CSP's meaning: no scheme means
  // this page's scheme (or https under http), *.host matches sub-domains only, no port means
  // the scheme's default one.
  function matches(pattern, origin) {
    if (pattern === "'self'") {
      return origin === window.location.origin;
    }
    var o = parseOrigin(origin);
    var p = /^(?:([a-z][a-z0-9+.-]*:)\/\/)?([^:]+)(?::(\d+|\*))?$/.exec(pattern);
    if (!o || !p) {
      return false;
    }
    var scheme = p[1] || window.location.protocol;
    if (o.scheme !== scheme && !(scheme === "http:" && o.scheme === "https:")) {
      return false;
    }
    var host = p[2];
    var hostOk = host.indexOf("*.") === 0
      ? o.host.length > host.length - 1 && o.host.slice(-(host.length - 1)) === host.slice(1)
      : o.host === host;
    return hostOk && (p[3] === "*" || o.port === (p[3] || DEFAULT_PORTS[o.scheme] || ""));
  }

  function allowed(origin) {
    return config.origins.some(function (pattern) { return matches(pattern, origin); });
  }

  // Where the parent is: known exactly from a message it sent, else from the browser
  // (ancestorOrigins: Chromium, WebKit; the referrer: the parent's address when it loaded us).
  var parentOrigin = null;

  function parentOrigins() {
    var found = parentOrigin;
    var ancestors = window.location.ancestorOrigins;
    if (!found && ancestors && ancestors.length && ancestors[0] !== "null") {
      found = ancestors[0];
    }
    if (!found && document.referrer) {
      try {
        found = new URL(document.referrer).origin;
      } catch (e) {
        found = null;
      }
    }
    if (found) {
      return allowed(found) ? [found] : [];
    }
    // unknown: every origin the patterns name exactly (never "*": the browser delivers only
    // to the one that really is the parent)
    return config.origins.map(function (pattern) {
      return pattern === "'self'" ? window.location.origin : pattern;
    }).filter(function (origin) { return parseOrigin(origin) && allowed(origin); });
  }

  function post(message) {
    parentOrigins().forEach(function (origin) {
      window.parent.postMessage(message, origin);
    });
  }

  function pageOf(pathname) {
    var prefix = config.prefix || "/";
    return pathname.indexOf(prefix) === 0 ? "/" + pathname.slice(prefix.length) : pathname;
  }

  function lang() {
    return document.documentElement.lang || "";
  }

  var ready = false;
  var pending = null;   // a set-filters that came before the page's first state

  function apply(request) {
    var current = pageOf(window.location.pathname);
    var page = request.page || current;
    var token = (window.shopperEmbed || {}).token;
    // the signed link opens one page; the server would refuse another one anyway
    if (page !== current && token) {
      post({ type: "shopper:refused", page: current, requested: page, lang: lang(),
             message: "This embedded view's link opens " + current + " only." });
      return;
    }
    var prefix = config.prefix || "/";
    window.shopperHistory.navigate(page === current ? window.location.pathname : prefix + page.slice(1),
                                   request.query.replace(/^\?/, ""));
  }

  // A well-formed set-filters request, or null.
  function request(data) {
    if (!data || typeof data !== "object" || data.type !== SET) {
      return null;
    }
    if (typeof data.query !== "string" || data.query.length > MAX_QUERY) {
      return null;
    }
    var page = data.page;
    if (page !== undefined && page !== null &&
        (typeof page !== "string" || !PAGE.test(page) || page.split("/").indexOf("..") !== -1)) {
      return null;
    }
    return { query: data.query, page: page || null };
  }

  window.addEventListener("message", function (event) {
    if (!allowed(event.origin)) {
      console.debug("Shopper Insights ignored a message from " + event.origin + ": not in FRAME_ANCESTORS");
      return;
    }
    if (event.source !== window.parent) {
      console.debug("Shopper Insights ignored a message from a window that is not its portal");
      return;
    }
    var wanted = request(event.data);
    if (!wanted) {
      console.debug("Shopper Insights ignored a message that is not a shopper:set-filters request");
      return;
    }
    parentOrigin = event.origin;
    if (ready) {
      apply(wanted);
    } else {
      pending = wanted;   // Dash has not drawn the page yet: applied with its first state
    }
  });

  // url_state.js announces every change of the page's state
  window.addEventListener("shopper:state", function (event) {
    var detail = event.detail || {};
    post({ type: ready ? "shopper:filters-changed" : "shopper:ready", page: pageOf(detail.pathname || ""),
           query: detail.query || "", lang: lang() });
    ready = true;
    if (pending) {
      var waiting = pending;
      pending = null;
      apply(waiting);
    }
  });
})();
