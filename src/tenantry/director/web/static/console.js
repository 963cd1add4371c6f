// tenantry console and portal: live updates without a framework.  Pages work without this script;
// it only refreshes parts of them (the server renders every part, escaped) and hides a field.
"use strict";
(function () {
  var ACTIVE = ["queued", "running"];

  function later(fn, ms) {
    window.setTimeout(function () {
      if (document.hidden) { later(fn, ms); } else { fn(); }
    }, ms);
  }

  // <div data-poll="/path" data-interval="ms">: replace its content with the server's fragment
  // (If-None-Match: a 304 costs nothing); data-reload-when-final reloads the page once a run ended.
  function pollFragment(el) {
    var url = el.dataset.poll + (el.dataset.poll.indexOf("/fleet/") >= 0 ? window.location.search : "");
    var interval = parseInt(el.dataset.interval || "5000", 10);
    var tag = null;
    function tick() {
      var headers = tag ? { "If-None-Match": tag } : {};
      fetch(url, { headers: headers, credentials: "same-origin" }).then(function (resp) {
        if (resp.status === 401 || resp.redirected) { window.location.reload(); return null; }
        if (resp.status === 200) {
          tag = resp.headers.get("ETag");
          return resp.text();
        }
        return null;
      }).then(function (html) {
        if (html !== null && html !== undefined) {
          el.innerHTML = html;
          var state = el.querySelector("[data-state]");
          if (el.dataset.reloadWhenFinal && state && ACTIVE.indexOf(state.dataset.state) < 0) {
            window.location.reload();
            return;
          }
        }
        later(tick, interval);
      }).catch(function () { later(tick, interval * 2); });
    }
    later(tick, interval);
  }

  // <div data-poll-json="/api/..." data-until="field">: reload the page once json[field] is false.
  function pollUntil(el) {
    var interval = parseInt(el.dataset.interval || "2000", 10);
    function tick() {
      fetch(el.dataset.pollJson, { credentials: "same-origin" }).then(function (resp) {
        return resp.ok ? resp.json() : null;
      }).then(function (data) {
        if (data && !data[el.dataset.until]) { window.location.reload(); return; }
        later(tick, interval);
      }).catch(function () { later(tick, interval * 2); });
    }
    later(tick, interval);
  }

  // The failover form: the typed confirmation is asked only for a real failover (the server checks it).
  function failoverForm(form) {
    var row = document.getElementById("confirm-row");
    var input = document.getElementById("confirm");
    function update() {
      var mode = form.querySelector("input[name=mode]:checked");
      var real = mode && mode.value === "failover";
      row.hidden = !real;
      input.required = real;
    }
    form.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll]"), pollFragment);
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll-json]"), pollUntil);
    var form = document.getElementById("failover-form");
    if (form) { failoverForm(form); }
  });
})();
