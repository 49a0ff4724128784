"""The browser snippet in headless Chromium.

A local test page (served through Playwright's router) carries small stand-ins of Hull.js and of
the Intercom messenger API that record every call, then loads the real snippet from the live
server. The page shares the live server's origin: Chromium's local-network-access checks block
another origin from loading a loopback script, which a real website (both sides public) never meets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, requires_chromium

VISITOR_ID = "16e690c0-485a-4e87-ae98-a326e788a4f7"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), requires_chromium]

playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

# Hull.js stand-in: the methods the snippet uses, each recording its call.
HULL_STANDIN = """
window.recorded = {hull: [], intercom: []};
window.Hull = {
  track: function (name, props) { recorded.hull.push(["track", name, props]); return "tracked"; },
  traits: function (traits) { recorded.hull.push(["traits", traits]); },
  identify: function (a, b) { recorded.hull.push(["identify", a, b]); },
  alias: function (id) { recorded.hull.push(["alias", id]); }
};
"""

# The Intercom loader stub (queues calls, like Intercom's install code) that "boots" into the
# messenger after a short delay: the real messenger replaces window.Intercom the same way.
INTERCOM_STANDIN = """
(function () {
  var stub = function () { stub.q.push(Array.prototype.slice.call(arguments)); };
  stub.q = [];
  window.Intercom = stub;
  setTimeout(function () {
    var messenger = function (command) {
      recorded.intercom.push(Array.prototype.slice.call(arguments));
      if (command === "getVisitorId") return %(visitor)s;
    };
    for (var i = 0; i < stub.q.length; i++) messenger.apply(null, stub.q[i]);
    window.Intercom = messenger;
  }, 300);
})();
"""


def page_html(snippet_src: str, *, intercom: bool = True, tag_attributes: str = "") -> str:
    intercom_js = INTERCOM_STANDIN % {"visitor": json.dumps(VISITOR_ID)} if intercom else ""
    return f"""<!doctype html><html><head><title>Website</title>
<script>{HULL_STANDIN}</script>
<script>{intercom_js}</script>
<script async src="{snippet_src}" {tag_attributes}></script>
</head><body>A website tracked with Hull.js</body></html>"""


@pytest.fixture
def browser() -> Iterator:
    with playwright_sync.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


class Website:
    """One page of the test website, with its console errors collected."""

    def __init__(self, browser, html: str, site: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.route(site, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
        self.page.goto(site)

    def status(self) -> str:
        return self.page.evaluate("window.__hullIntercom && window.__hullIntercom.status")

    def wait_for_status(self, *statuses: str, timeout_ms: int = 8000) -> str:
        self.page.wait_for_function(
            "(statuses) => window.__hullIntercom && statuses.includes(window.__hullIntercom.status)",
            arg=list(statuses),
            timeout=timeout_ms,
        )
        return self.status()

    def recorded(self, side: str) -> list:
        return self.page.evaluate(f"window.recorded.{side}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def site_url(live_server) -> str:
    """The test website's page: answered by Playwright's router, never reaching the live server."""
    return live_server.url + "/__website__/"


@pytest.fixture
def snippet_src(live_server, connector) -> str:
    from sync.services.snippet import snippet_url

    return snippet_url(connector, base_url=live_server.url)


@pytest.fixture
def forwarding_connector(connector):
    from sync.models import FieldMapping

    connector.outgoing_events = ["Signed up", "Viewed *"]
    connector.save()
    FieldMapping.objects.create(connector=connector, entity="user", direction="outgoing", hull_attribute="first_name", intercom_attribute="name")
    FieldMapping.objects.create(connector=connector, entity="lead", direction="outgoing", hull_attribute="plan", intercom_attribute="plan")
    return connector


def test_the_snippet_aliases_the_intercom_visitor_with_the_lead_anonymous_id(browser, site_url, snippet_src):
    site = Website(browser, page_html(snippet_src), site_url)
    try:
        assert site.wait_for_status("linked") == "linked"
        assert ["alias", f"intercom-lead:lead-{VISITOR_ID}"] in site.recorded("hull")
        assert ["getVisitorId"] in site.recorded("intercom")
        assert site.errors == []
    finally:
        site.close()


def test_hull_track_and_traits_are_forwarded_to_the_messenger(browser, site_url, forwarding_connector, snippet_src):
    site = Website(browser, page_html(snippet_src), site_url)
    try:
        site.wait_for_status("linked")
        result = site.page.evaluate(
            """() => {
              const r = Hull.track("Signed up", {plan: "pro", seats: 3, tags: ["a", "b"], nested: {x: 1}});
              Hull.track("Viewed pricing", {});
              Hull.track("Internal only", {a: 1});
              Hull.traits({first_name: "Kaylee", plan: {operation: "setIfNull", value: "pro"}, unmapped: 1});
              Hull.identify("user-1", {first_name: "Kaylee F."});
              return r;
            }"""
        )
        assert result == "tracked"  # Hull's own return value is kept
        intercom = site.recorded("intercom")
        assert ["trackEvent", "Signed up", {"plan": "pro", "seats": 3, "tags": '["a","b"]'}] in intercom
        assert ["trackEvent", "Viewed pricing", {}] in intercom
        assert not any(call[:2] == ["trackEvent", "Internal only"] for call in intercom)  # not whitelisted
        assert ["update", {"name": "Kaylee", "plan": "pro"}] in intercom
        assert ["update", {"name": "Kaylee F."}] in intercom
        hull = site.recorded("hull")
        assert ["track", "Internal only", {"a": 1}] in hull  # Hull itself still got everything
        assert site.errors == []
    finally:
        site.close()


def test_when_intercom_never_loads_the_snippet_gives_up_quietly(browser, site_url, forwarding_connector, snippet_src):
    site = Website(browser, page_html(snippet_src, intercom=False, tag_attributes='data-intercom-timeout-ms="600"'), site_url)
    try:
        site.page.evaluate("() => Hull.track('Signed up', {plan: 'pro'})")
        assert site.wait_for_status("no-intercom") == "no-intercom"
        site.page.evaluate("() => Hull.track('Signed up', {plan: 'pro'})")
        hull = site.recorded("hull")
        assert not any(call[0] == "alias" for call in hull)
        assert hull.count(["track", "Signed up", {"plan": "pro"}]) == 2
        assert site.recorded("intercom") == []
        assert site.page.evaluate("window.__hullIntercom.errors") == 0
        assert site.errors == []
    finally:
        site.close()


def test_when_hull_never_loads_the_snippet_gives_up_quietly(browser, site_url, snippet_src):
    html = page_html(snippet_src, tag_attributes='data-hull-timeout-ms="300"').replace(HULL_STANDIN, "window.recorded = {hull: [], intercom: []};")
    site = Website(browser, html, site_url)
    try:
        assert site.wait_for_status("no-hull") == "no-hull"
        assert site.errors == []
    finally:
        site.close()


def test_a_paused_connector_does_nothing(browser, site_url, connector, snippet_src):
    connector.is_active = False
    connector.save()
    site = Website(browser, page_html(snippet_src), site_url)
    try:
        assert site.wait_for_status("paused") == "paused"
        site.page.wait_for_timeout(500)  # the messenger boots meanwhile
        assert site.recorded("hull") == []
        assert site.page.evaluate("Hull.track.__hullIntercom === undefined")
        assert site.errors == []
    finally:
        site.close()


def test_a_broken_messenger_never_reaches_the_host_page(browser, site_url, forwarding_connector, snippet_src):
    html = page_html(snippet_src).replace(
        'if (command === "getVisitorId")', 'if (command === "trackEvent") throw new Error("messenger bug"); if (command === "getVisitorId")'
    )
    site = Website(browser, html, site_url)
    try:
        site.wait_for_status("linked")
        assert site.page.evaluate("() => Hull.track('Signed up', {})") == "tracked"
        assert site.page.evaluate("window.__hullIntercom.errors") == 1
        assert site.errors == []
    finally:
        site.close()


def test_the_snippets_alias_is_an_anonymous_id_of_the_incoming_lead(
    browser, site_url, connector, intercom_sandbox, hull_sandbox, client, django_capture_on_commit_callbacks
):
    """The same visitor seen twice: by the snippet in the browser, and by Intercom's webhook for its lead.

    `contact_created.json` is a lead whose visitor id (1.x `user_id`, 2.x `external_id`) is what
    `Intercom('getVisitorId')` returns in that visitor's browser.
    """
    from sync.services.snippet import snippet_url
    from tests.test_webhook_topics import fixture_bytes, post_fixture

    lead = json.loads(fixture_bytes("contact_created"))["data"]["item"]
    visitor_id = lead["user_id"]
    html = page_html(snippet_url(connector, base_url=site_url.rsplit("/__website__/", 1)[0])).replace(json.dumps(VISITOR_ID), json.dumps(visitor_id))
    site = Website(browser, html, site_url)
    try:
        site.wait_for_status("linked")
        [browser_alias] = [call[1] for call in site.recorded("hull") if call[0] == "alias"]
        assert site.errors == []
    finally:
        site.close()

    connector.incoming_events = ["contact.created"]
    connector.save()
    post_fixture(client, connector, "contact_created", django_capture_on_commit_callbacks)
    lead_ids = {record.body["anonymous_id"] for record in hull_sandbox.firehose_records if record.type == "alias"}
    lead_ids |= {record.claims["io.hull.asUser"].get("anonymous_id") for record in hull_sandbox.firehose_records if record.type == "traits"}
    assert browser_alias in lead_ids
    assert browser_alias in hull_sandbox.user(email="bob@rei.com")["anonymous_ids"]
