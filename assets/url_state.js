// Filter state -> address bar and browser history. The pages' callbacks put their canonical
// query string in a {"type": "url-state"} store; syncUrl writes it into the address:
// - the first write after a load or a navigation replaces the entry (it only makes the
//   address canonical), every later change of the state pushes one, so Back and Forward walk
//   through the filters;
// - a push does not fire Dash's router (the page already shows that state), so dcc.Location
//   (id _pages_location) is not told; it keeps the address it last read, and re-renders on
//   popstate only when the new address differs from that one. Going Back to exactly that
//   address would leave the page showing the newer filters: then this tells the router itself.
// Every change of the page's state is announced as a "shopper:state" event (assets/portal.js
// passes it on to a framing portal), and window.shopperHistory.navigate() lets a portal
// change the filters the way a dcc.Link does.
(function () {
  var LOCATION_ID = "_pages_location";       // Dash's pages router location (dash.py _ID_LOCATION)
  var PUSH_EVENT = "_dashprivate_pushstate"; // what dcc.Link dispatches and dcc.Location listens to

  function here() {
    return window.location.pathname + window.location.search;
  }

  // These listeners are added before Dash mounts dcc.Location, so they run before its own.
  var routed = here();   // the address dcc.Location last read (it reads it at mount, as here)
  var shown = here();    // the address of the state the page shows
  var fresh = true;      // the next write replaces the entry
  var announced = null;  // the last state told to listeners

  function navigated() {
    routed = here();
    shown = here();
    fresh = true;
  }

  // The router re-runs the page's layout for the address; the query goes through the same
  // server-side parsers as any link. set_props notifies the router even with an unchanged value.
  function rerender() {
    var clientside = window.dash_clientside || {};
    if (typeof clientside.set_props === "function") {
      clientside.set_props(LOCATION_ID, { search: window.location.search });
    }
  }

  window.addEventListener("popstate", function () {
    if (here() === routed && here() !== shown) {
      rerender();
    }
    navigated();
  });
  window.addEventListener(PUSH_EVENT, navigated);

  // pathname + the page's query, with embed=1 first, the chosen language, the page's own keys
  // and the embed token last (as `python -m dashboard embed-url` writes them). `state` is the
  // same without the token (a credential has no business in Dash's state), `query` the page's
  // filters alone.
  function address(pathname, pageQuery) {
    var params = new URLSearchParams(pageQuery);
    // An embedded frame keeps embed=1 and its token (read at load by embed.js): a reload of
    // the frame must still be embedded and signed in.
    var embed = window.shopperEmbed || {};
    var current = new URLSearchParams(window.location.search);
    params.delete("embed");
    params.delete("token");
    params.delete("lang");
    var ordered = new URLSearchParams();
    if (embed.embedded || current.get("embed") === "1") {
      ordered.set("embed", "1");
    }
    // a language chosen in the address stays chosen (links and embeds carry it)
    if (current.get("lang")) {
      ordered.set("lang", current.get("lang"));
    }
    params.forEach(function (value, key) { ordered.append(key, value); });
    var state = ordered.toString().replace(/%2C/g, ",");
    var token = embed.token || current.get("token");
    if (token) {
      ordered.set("token", token);
    }
    var search = ordered.toString().replace(/%2C/g, ",");
    return {
      url: pathname + (search ? "?" + search : ""),
      state: state,
      query: params.toString().replace(/%2C/g, ","),
    };
  }

  function announce(query) {
    var key = window.location.pathname + "?" + query;
    if (key === announced) {
      return;
    }
    announced = key;
    window.dispatchEvent(new CustomEvent("shopper:state", {
      detail: { pathname: window.location.pathname, query: query },
    }));
  }

  window.shopperHistory = Object.freeze({
    // Show `pageQuery` on `pathname` as a new history entry; false when that is already shown.
    navigate: function (pathname, pageQuery) {
      var target = address(pathname, pageQuery).url;
      if (target === here()) {
        return false;
      }
      window.history.pushState({}, "", target);
      if (target === routed) {
        rerender();   // dcc.Location would see no change
        navigated();
      } else {
        window.dispatchEvent(new CustomEvent(PUSH_EVENT));
      }
      return true;
    },
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    shopper: {
      syncUrl: function (states) {
        if (!states || !states.length) {
          return window.dash_clientside.no_update;
        }
        // a page may keep several independent parts of its state (one store each)
        var parts = states.filter(function (s) { return typeof s === "string" && s; });
        var written = address(window.location.pathname, parts.join("&"));
        var target = written.url + window.location.hash;
        if (target !== here() + window.location.hash) {
          if (fresh) {
            window.history.replaceState(window.history.state, "", target);
          } else {
            window.history.pushState({}, "", target);
          }
        }
        fresh = false;
        shown = here();
        announce(written.query);
        return written.state;
      }
    }
  });
})();
