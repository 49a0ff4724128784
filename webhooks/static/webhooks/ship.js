/*! Hull <-> Intercom connector: browser snippet. Served at /hull/<connector>/ship.js with the
 * connector's settings embedded (sync/services/snippet.py). Plain ES5, no build step.
 *
 * 1. Waits (bounded) for Hull.js, then for the Intercom messenger to know its visitor id.
 * 2. Aliases the Hull visitor with the id the connector gives Intercom leads, so the web visitor
 *    and the Intercom lead merge in Hull.
 * 3. Forwards Hull.track to Intercom('trackEvent') and Hull.traits / Hull.identify to
 *    Intercom('update') for the outgoing-mapped attributes.
 * It never throws into the host page: every step is guarded, and Hull's own calls keep working.
 * Options on the <script> tag: data-hull-timeout-ms, data-intercom-timeout-ms, data-debug.
 */
(function (window, document) {
  "use strict";
  var CONFIG;
  try {
    CONFIG = __HULL_INTERCOM_CONFIG__;
  } catch (e) {
    return; // The raw file, not served through the connector: nothing to do.
  }
  if (!CONFIG || window.__hullIntercom) return; // Loaded twice: the first copy does the work.

  var POLL_MS = 100;
  var MAX_PENDING = 50; // Calls kept while the Intercom loader is not on the page yet.
  var MAX_METADATA_KEYS = 10; // Intercom keeps at most 10 metadata keys per event.
  var MAX_STRING = 255; // Intercom's limit for custom attribute and metadata strings.
  var STORAGE_KEY = "hull-intercom:aliases";
  var script = document.currentScript;
  var state = { version: CONFIG.version, status: "waiting", aliases: [], forwarded: [], errors: 0 };
  var pending = [];
  var intercomGaveUp = false;
  window.__hullIntercom = state;

  function option(name, fallback) {
    var raw = script && script.getAttribute("data-" + name);
    var value = raw === null || raw === undefined ? NaN : parseInt(raw, 10);
    return isNaN(value) ? fallback : value;
  }

  var debugOn = !!(script && script.hasAttribute("data-debug"));
  function debug(message, detail) {
    if (debugOn && window.console && console.debug) console.debug("[hull-intercom] " + message, detail);
  }

  function guard(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        state.errors += 1;
        debug("ignored error", e);
      }
    };
  }

  // Calls test() every POLL_MS until it returns something truthy or timeoutMs has passed.
  function waitFor(test, timeoutMs, onReady, onTimeout) {
    var deadline = new Date().getTime() + timeoutMs;
    var tick = guard(function () {
      var value = guard(test)();
      if (value) return onReady(value);
      if (new Date().getTime() >= deadline) return onTimeout();
      window.setTimeout(tick, POLL_MS);
    });
    tick();
  }

  function readyHull() {
    var hull = window.Hull;
    return hull && typeof hull.track === "function" ? hull : null;
  }

  // The Intercom loader installs a queueing stub (it has a `q` array) until the messenger boots;
  // asking the stub for the visitor id would only queue the question.
  function visitorId() {
    var intercom = window.Intercom;
    if (typeof intercom !== "function" || intercom.q instanceof Array) return null;
    var id = intercom("getVisitorId");
    return typeof id === "string" && id ? id : null;
  }

  function callIntercom(args) {
    if (typeof window.Intercom === "function") {
      window.Intercom.apply(window, args);
      state.forwarded.push(args[0]);
      if (state.forwarded.length > MAX_PENDING) state.forwarded.shift(); // a debugging aid, kept short
    } else if (!intercomGaveUp && pending.length < MAX_PENDING) {
      pending.push(args);
    }
  }

  function flushPending() {
    if (typeof window.Intercom !== "function") return;
    var calls = pending;
    pending = [];
    for (var i = 0; i < calls.length; i++) guard(callIntercom)(calls[i]);
  }

  function eventAllowed(name) {
    if (!CONFIG.sendEvents || typeof name !== "string") return false;
    for (var i = 0; i < CONFIG.events.length; i++) {
      var pattern = CONFIG.events[i];
      if (pattern === "all_events" || pattern === name) return true;
      if (pattern.indexOf("*") !== -1) {
        var escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
        if (new RegExp("^" + escaped + "$").test(name)) return true;
      }
    }
    return false;
  }

  function scalar(value) {
    if (value && typeof value === "object" && "value" in value) value = value.value; // {operation, value}
    if (value instanceof Array) value = JSON.stringify(value); // Intercom has no array type.
    if (typeof value === "string") return value.length > MAX_STRING ? value.slice(0, MAX_STRING) : value;
    if (typeof value === "number" || typeof value === "boolean" || value === null) return value;
    return undefined;
  }

  function forwardTrack(name, properties) {
    if (!eventAllowed(name)) return;
    var metadata = {};
    var count = 0;
    for (var key in properties || {}) {
      if (count >= MAX_METADATA_KEYS) break;
      if (!Object.prototype.hasOwnProperty.call(properties, key)) continue;
      var value = scalar(properties[key]);
      if (value === undefined || value === null) continue;
      metadata[key] = value;
      count += 1;
    }
    callIntercom(["trackEvent", name, metadata]);
  }

  function forwardTraits(traits) {
    if (!traits || typeof traits !== "object") return;
    var update = {};
    var any = false;
    for (var i = 0; i < CONFIG.mapping.length; i++) {
      var hullName = CONFIG.mapping[i][0];
      var intercomName = CONFIG.mapping[i][1];
      var key = hullName in traits ? hullName : "traits_" + hullName in traits ? "traits_" + hullName : null;
      if (key === null) continue;
      var value = scalar(traits[key]);
      if (value === undefined) continue;
      update[intercomName] = value;
      any = true;
    }
    if (any) callIntercom(["update", update]);
  }

  // Hull.identify(traits) or Hull.identify(id, traits): the traits are the last object argument.
  function forwardIdentify() {
    for (var i = arguments.length - 1; i >= 0; i--) {
      if (arguments[i] && typeof arguments[i] === "object") return forwardTraits(arguments[i]);
    }
  }

  // Hull's own method runs first and exactly as before; forwarding happens after, guarded.
  function wrap(hull, name, forward) {
    var original = hull[name];
    if (typeof original !== "function" || original.__hullIntercom) return;
    var wrapped = function () {
      var result = original.apply(this, arguments);
      guard(forward).apply(null, arguments);
      return result;
    };
    wrapped.__hullIntercom = true;
    hull[name] = wrapped;
  }

  function remembered() {
    try {
      return JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "[]");
    } catch (e) {
      return []; // Storage blocked (private mode, sandboxed iframe): alias again, Hull dedupes.
    }
  }

  function remember(ids) {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(ids.slice(-20)));
    } catch (e) {
      debug("could not remember aliases", e);
    }
  }

  function aliasVisitor(hull, id) {
    var done = remembered();
    for (var i = 0; i < CONFIG.aliasPrefixes.length; i++) {
      var anonymousId = CONFIG.aliasPrefixes[i] + id;
      state.aliases.push(anonymousId);
      if (done.indexOf(anonymousId) !== -1) continue;
      if (typeof hull.alias === "function") hull.alias(anonymousId);
      else if (typeof hull.api === "function") hull.api({ path: "/me/alias" }, "post", { anonymous_id: anonymousId });
      else continue;
      done.push(anonymousId);
    }
    remember(done);
  }

  guard(function start() {
    if (!CONFIG.active) {
      state.status = "paused";
      return;
    }
    waitFor(
      readyHull,
      option("hull-timeout-ms", CONFIG.hullTimeoutMs),
      function (hull) {
        wrap(hull, "track", forwardTrack);
        wrap(hull, "traits", forwardTraits);
        wrap(hull, "identify", forwardIdentify);
        state.status = "waiting-for-intercom";
        waitFor(
          function () {
            flushPending();
            return visitorId();
          },
          option("intercom-timeout-ms", CONFIG.intercomTimeoutMs),
          function (id) {
            aliasVisitor(hull, id);
            state.visitorId = id;
            state.status = "linked";
            debug("linked Intercom visitor", id);
          },
          function () {
            intercomGaveUp = typeof window.Intercom !== "function";
            if (intercomGaveUp) pending = [];
            state.status = "no-intercom";
            debug("Intercom visitor id not available; not linked");
          }
        );
      },
      function () {
        state.status = "no-hull";
        debug("Hull.js not found; nothing to do");
      }
    );
  })();
})(window, document);
