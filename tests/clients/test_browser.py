"""The stock pomelo 2.2.7 browser client (npm ``pomelo@2.2.7``, the template's
``build.js``, vendored unmodified in ``browser/``) in headless Chromium against the example
game's WebSocket port (issue 15: it writes message ids most-significant byte first, and
the answers to ids that are multiples of 128 were lost)."""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from pomelo_twisted.testing.browser import browser_missing, launch_chromium

from .harness import HERE, RealClientCase

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extras install it
    sync_playwright = None  # type: ignore[assignment]

PAGE = HERE / "browser"
#: sha256 of template/web-server/public/js/lib/build/build.js in npm pomelo@2.2.7
#: (tarball sha1 9b2704d43f76fc50f4f32127dd5d9dcd3e98b7d2): the vendored copy is that file.
BUILD_JS_SHA256 = "55fe5bb1a6c7b17027a973c60c5a81f544ae6ab3add8167d222a2d17cf412a4b"
BURST = 300
WAIT_MS = 20_000
#: The request id of the burst's first echo (the entry request took id 1).
FIRST_ID = 2


class PageFiles(Resource):
    """The page and the stock client, nothing else (GET /index.html, GET /build.js)."""

    isLeaf = True  # noqa: N815 (twisted.web's name)
    TYPES = {b"/index.html": b"text/html; charset=utf-8", b"/build.js": b"text/javascript"}

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        """The named file with its content type, or 404."""
        content_type = self.TYPES.get(request.path)
        if content_type is None:
            request.setResponseCode(404)
            return b"not found"
        request.setHeader(b"content-type", content_type)
        return (PAGE / request.path.decode("ascii").lstrip("/")).read_bytes()


class VendoredClientTests(SynchronousTestCase):
    """The vendored file is the published one."""

    def test_build_js_is_the_published_file(self) -> None:
        """browser/build.js is byte for byte npm pomelo@2.2.7's template build.js."""
        digest = hashlib.sha256((PAGE / "build.js").read_bytes()).hexdigest()
        self.assertEqual(digest, BUILD_JS_SHA256)


class BrowserClientTests(RealClientCase):
    """Chromium loads the page from a twisted.web site of this test, the page's client
    talks WebSocket to the game."""

    def setUp(self) -> None:
        missing = browser_missing()
        if missing is not None:
            raise self.skipTest(missing)

    @inlineCallbacks
    def test_burst_of_echo_requests_all_answered(self) -> Any:
        """After entry, 300 echo requests sent without waiting (ids 2..301: 128 and 256
        among them) are all answered, each with the body it sent."""
        game = yield self.started_game()
        url = yield self.serve_page()
        result, errors = yield deferToThread(self.burst, url, game.port)
        self.assertEqual(errors, [])
        self.assertFalse(result["closed"], "the game closed the WebSocket")
        answers = result["answers"]
        wrong = [pair for pair in answers if pair[0] != pair[1]]
        self.assertEqual(wrong, [])
        lost = sorted(set(range(BURST)) - {sent["seq"] for sent, _answer in answers})
        self.assertEqual(
            lost, [], f"answers lost to message ids {[FIRST_ID + seq for seq in lost]}"
        )
        self.assertEqual(len(answers), BURST)

    @inlineCallbacks
    def test_chat_session_with_push(self) -> Any:
        """Entry, join and send are answered and the ``onChat`` push of its own message
        arrives (its route dictionary-compressed, resolved by the client's dictionary)."""
        game = yield self.started_game()
        url = yield self.serve_page()
        result, errors = yield deferToThread(
            self.run_page,
            url,
            """([host, port, waitMs]) => Promise.race([
                window.chat(host, port, 'browser-2', 'room-js'),
                new Promise((_, reject) => setTimeout(
                    () => reject(new Error('no onChat push')), waitMs))])""",
            ["127.0.0.1", game.port, WAIT_MS],
        )
        self.assertEqual(errors, [])
        self.assertEqual(result["entry"], {"code": 200, "uid": "browser-2"})
        self.assertEqual(result["join"], {"code": 200, "rid": "room-js", "members": ["browser-2"]})
        self.assertEqual(result["send"], {"code": 200})
        self.assertEqual(
            result["push"],
            {"rid": "room-js", "from": "browser-2", "content": "hello from build.js"},
        )

    @inlineCallbacks
    def serve_page(self) -> Any:
        """Serve PAGE on a free loopback port until cleanup; fires with the page's URL."""
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
            Site(PageFiles())
        )
        self.addCleanup(port.stopListening)
        return f"http://127.0.0.1:{port.getHost().port}/index.html"

    def burst(self, url: str, game_port: int) -> tuple[dict[str, Any], list[str]]:
        """The page's ``burst`` bounded by WAIT_MS (in a thread): (its result, the page's
        script errors)."""
        return self.run_page(
            url,
            """([host, port, count, waitMs]) => Promise.race([
                window.burst(host, port, count),
                new Promise(resolve => setTimeout(() => resolve(
                    {answers: window.burstAnswers || [], closed: false}), waitMs))])""",
            ["127.0.0.1", game_port, BURST, WAIT_MS],
        )

    def run_page(self, url: str, script: str, args: list[Any]) -> tuple[Any, list[str]]:
        """Open ``url`` in headless Chromium and evaluate ``script`` (a function of
        ``args`` returning a promise) in a thread: (its result, the page's script errors)."""
        errors: list[str] = []
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                page = browser.new_page()
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(url)
                result = page.evaluate(script, args)
            finally:
                browser.close()
        return result, errors
