/* medtech-ledger public site: search and filters for a page's lists, served with the site
   (no network, no library). Without it every row stays shown and the form stays hidden.
   Rows carry data-text (what a search matches), data-tech (technology anchors) and data-city;
   the form's state is kept in the address (?q=&tech=&city=) so a filtered list can be shared. */
(function () {
  "use strict";
  var form = document.querySelector("form.filter");
  if (!form) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-text]"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("[data-filter-group]"));
  var toc = Array.prototype.slice.call(document.querySelectorAll("nav.toc a"));
  var count = form.querySelector(".filter-count");
  var fields = ["q", "tech", "city"];

  function field(name) { return form.elements.namedItem(name); }

  function terms(text) {
    return text.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
  }

  function matches(row, words, tech, city) {
    var text = (row.getAttribute("data-text") || "").toLowerCase();
    for (var i = 0; i < words.length; i++) {
      if (text.indexOf(words[i]) < 0) { return false; }
    }
    if (tech && (" " + (row.getAttribute("data-tech") || "") + " ").indexOf(" " + tech + " ") < 0) { return false; }
    if (city && row.getAttribute("data-city") !== city) { return false; }
    return true;
  }

  function apply() {
    var q = field("q") ? field("q").value : "";
    var tech = field("tech") ? field("tech").value : "";
    var city = field("city") ? field("city").value : "";
    var words = terms(q);
    var shown = 0;
    rows.forEach(function (row) {
      var ok = matches(row, words, tech, city);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    groups.forEach(function (group) {
      group.hidden = group.querySelector("[data-text]:not([hidden])") === null;
    });
    toc.forEach(function (link) {
      var section = document.getElementById(decodeURIComponent(link.hash.slice(1)));
      link.hidden = section !== null && section.hidden;
    });
    if (count) { count.textContent = "显示 " + shown + " / " + rows.length + " 条"; }
    var params = [];
    fields.forEach(function (name) {
      var f = field(name);
      if (f && f.value) { params.push(name + "=" + encodeURIComponent(f.value)); }
    });
    var search = params.length ? "?" + params.join("&") : "";
    if (window.history && window.history.replaceState && search !== window.location.search) {
      window.history.replaceState(null, "", window.location.pathname + search + window.location.hash);
    }
  }

  function decode(text) {
    try { return decodeURIComponent(text.replace(/\+/g, " ")); } catch (e) { return ""; }
  }

  function restore() {
    var query = window.location.search.replace(/^\?/, "");
    if (!query) { return; }
    query.split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      var name = decode(at < 0 ? pair : pair.slice(0, at));
      var f = fields.indexOf(name) >= 0 ? field(name) : null;
      if (f) { f.value = at < 0 ? "" : decode(pair.slice(at + 1)); }
    });
  }

  form.hidden = false;
  form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  restore();
  apply();
}());
