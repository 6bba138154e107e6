// Reloads the page every 60 s, keeping the scroll position, but not while a form is
// being filled in (a half-typed silence reason would be lost). Without JavaScript a
// <noscript> meta refresh does the reloading instead.
(function () {
  var key = "cis490-scroll:" + location.pathname + location.search;
  var y = sessionStorage.getItem(key);
  if (y !== null) {
    sessionStorage.removeItem(key);
    window.scrollTo(0, Number(y));
  }
  setInterval(function () {
    var a = document.activeElement;
    if (a && a.form) return;
    var reason = document.getElementById("reason");
    if (reason && reason.value) return;
    sessionStorage.setItem(key, String(window.scrollY));
    location.reload();
  }, 60000);
})();
