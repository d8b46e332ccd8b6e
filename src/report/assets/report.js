// tapeloop report: sort, filter and open drill-downs; state lives in the URL hash
// (#sort=COL&desc=1&verdict=FAIL&finish=..&provider=..&q=TEXT&open=SCENARIO/CASSETTE).
(function () {
  document.documentElement.classList.add("js");
  var table = document.querySelector("table.runs");
  if (!table) return;
  var groups = Array.prototype.slice.call(table.tBodies);
  groups.forEach(function (g, i) { g.dataset.index = i; });
  var form = document.querySelector("form.filters");
  var field = function (n) { return form.elements[n]; };
  var state = {};
  function readHash() {
    state = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      if (!kv) return;
      var p = kv.split("=");
      state[decodeURIComponent(p[0])] = decodeURIComponent((p[1] || "").replace(/\+/g, " "));
    });
  }
  function writeHash() {
    var parts = [];
    Object.keys(state).forEach(function (k) {
      if (state[k]) parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(state[k]));
    });
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
  }
  function key(g, col) {
    var cell = g.rows[0].cells[col];
    var v = cell.getAttribute("data-v");
    var n = parseFloat(v);
    return v !== "" && !isNaN(n) && isFinite(v) ? n : (v || cell.textContent).toLowerCase();
  }
  function apply() {
    ["verdict", "finish", "provider", "q"].forEach(function (n) { field(n).value = state[n] || ""; });
    var heads = table.tHead.rows[0].cells;
    var col = -1;
    for (var i = 0; i < heads.length; i++) {
      var mine = heads[i].getAttribute("data-col") === state.sort;
      if (mine) col = i;
      if (mine) heads[i].setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      else heads[i].removeAttribute("aria-sort");
    }
    var order = groups.slice();
    if (col >= 0) {
      order.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        var c = x < y ? -1 : x > y ? 1 : a.dataset.index - b.dataset.index;
        if (x === y) return c;
        return state.desc ? -c : c;
      });
    }
    var q = (state.q || "").toLowerCase(), shown = 0;
    order.forEach(function (g) {
      table.appendChild(g);
      var ok = (!state.verdict || g.dataset.verdict === state.verdict) &&
        (!state.finish || g.dataset.finish === state.finish) &&
        (!state.provider || g.dataset.provider === state.provider) &&
        (!q || g.dataset.run.toLowerCase().indexOf(q) >= 0);
      g.hidden = !ok;
      if (ok) shown++;
      g.classList.toggle("open", g.dataset.run === state.open);
    });
    form.querySelector("output").textContent = shown + " of " + groups.length + " runs";
  }
  table.tHead.addEventListener("click", function (e) {
    var th = e.target.closest("th[data-col]");
    if (!th) return;
    var c = th.getAttribute("data-col");
    state.desc = state.sort === c && !state.desc ? "1" : "";
    state.sort = c;
    writeHash(); apply();
  });
  groups.forEach(function (g) {
    g.rows[0].addEventListener("click", function () {
      state.open = g.classList.contains("open") ? "" : g.dataset.run;
      writeHash(); apply();
    });
  });
  form.addEventListener("input", function () {
    ["verdict", "finish", "provider", "q"].forEach(function (n) { state[n] = field(n).value; });
    writeHash(); apply();
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash(); apply();
})();
