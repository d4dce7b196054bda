// ?embed=1 renders without navigation chrome: mark the document before React draws anything,
// so an embedding portal never sees the menu flash.
(function () {
  if (new URLSearchParams(window.location.search).get("embed") === "1") {
    document.documentElement.classList.add("embed");
  }
})();
