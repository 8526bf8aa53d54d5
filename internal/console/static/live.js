// The live feed: status events from /live/events (server-sent events),
// newest first. Rows are built with textContent only, so an event's text
// can never become markup.
(function () {
  "use strict";
  var table = document.getElementById("feed");
  if (!table) return;
  var body = table.tBodies[0];
  var status = document.getElementById("feed-status");
  var pause = document.getElementById("pause");
  var keep = 500, count = 0, paused = false, held = [];

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text == null || text === "" ? "–" : String(text);
    tr.appendChild(td);
    return td;
  }

  function add(ev) {
    var tr = document.createElement("tr");
    tr.dataset.order = ev.out_order_id;
    tr.dataset.state = ev.state;
    // "2026-11-21T10:00:00.123456Z" reads as 2026-11-21 10:00:00.123.
    cell(tr, String(ev.at || "").replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace("Z", ""));
    var td = cell(tr, "");
    var a = document.createElement("a");
    a.href = "/orders/" + encodeURIComponent(ev.out_order_id);
    a.textContent = ev.out_order_id;
    td.textContent = "";
    td.appendChild(a);
    var st = cell(tr, "");
    var span = document.createElement("span");
    span.className = "state s-" + String(ev.state).replace(/[^a-z_]/g, "");
    span.textContent = ev.state;
    st.textContent = "";
    st.appendChild(span);
    cell(tr, ev.seq, "n");
    cell(tr, ev.mg_id);
    cell(tr, ev.room_id);
    cell(tr, ev.provider);
    cell(tr, ev.amount, "n");
    cell(tr, ev.error ? ev.error.code + ": " + ev.error.message : "");
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > keep) body.deleteRow(-1);
    count++;
  }

  function say(text) { status.textContent = text; }

  var es = new EventSource(table.dataset.src);
  es.addEventListener("ready", function () {
    table.dataset.ready = "true";
    say(count ? count + " event(s); connected." : "Connected: waiting for events.");
  });
  // The server ends a feed whose watch broke; EventSource then connects
  // again by itself (after the server's retry: 2 s).
  es.addEventListener("end", function () { say("The status stream ended; reconnecting…"); });
  // More events came than the feed could hold between two writes: the
  // server says how many it left out.
  var dropped = 0;
  es.addEventListener("dropped", function (m) {
    try { dropped += JSON.parse(m.data).count || 0; } catch (e) { return; }
    say(count + " event(s); " + dropped + " more not shown (the feed fell behind).");
  });
  es.onmessage = function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (paused) {
      held.push(ev);
      if (held.length > keep) held.shift();
      say("Paused: " + held.length + " event(s) held.");
      return;
    }
    add(ev);
    say(count + " event(s).");
  };
  es.onerror = function () {
    table.dataset.ready = "false";
    say("Disconnected; reconnecting…");
  };
  pause.addEventListener("click", function () {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      held.forEach(add);
      held = [];
      say(count + " event(s).");
    }
  });
})();
