// Filter state -> address bar. The pages' callbacks put their canonical query string in a
// {"type": "url-state"} store; this writes it with history.replaceState, which changes the
// link without firing the router (a pushState/Location update would re-render the page).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  shopper: {
    syncUrl: function (states) {
      if (!states || !states.length) {
        return window.dash_clientside.no_update;
      }
      // a page may keep several independent parts of its state (one store each)
      var parts = states.filter(function (s) { return typeof s === "string" && s; });
      var params = new URLSearchParams(parts.join("&"));
      if (new URLSearchParams(window.location.search).get("embed") === "1") {
        params.set("embed", "1");
      }
      var query = params.toString().replace(/%2C/g, ",");
      var target = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
      if (target !== window.location.pathname + window.location.search + window.location.hash) {
        window.history.replaceState(window.history.state, "", target);
      }
      return query;
    }
  }
});
