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
      // An embedded frame keeps embed=1 and its token (read at load by embed.js): a reload of
      // the frame must still be embedded and signed in. embed first, token last, as
      // `python -m dashboard embed-url` writes them.
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
      // the store gets the state without the token: a credential has no business in Dash's state
      var state = ordered.toString().replace(/%2C/g, ",");
      var token = embed.token || current.get("token");
      if (token) {
        ordered.set("token", token);
      }
      var query = ordered.toString().replace(/%2C/g, ",");
      var target = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
      if (target !== window.location.pathname + window.location.search + window.location.hash) {
        window.history.replaceState(window.history.state, "", target);
      }
      return state;
    }
  }
});
