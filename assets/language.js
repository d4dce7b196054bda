// The language switcher (dashboard/components/shell.py) links to "?lang=xx". Following one
// as it is would drop the filters of the page being read; this keeps the page, its filters,
// the embed flag and token, and changes only lang. The page is loaded again, so the server
// draws it, its <html lang> and every callback after it in the new language.
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a.lang-option");
  if (!link) {
    return;
  }
  var lang = new URL(link.href, window.location.href).searchParams.get("lang");
  if (!lang) {
    return;
  }
  event.preventDefault();
  var params = new URLSearchParams(window.location.search);
  params.set("lang", lang);
  window.location.assign(window.location.pathname + "?" + params.toString().replace(/%2C/g, ",") +
                         window.location.hash);
});
