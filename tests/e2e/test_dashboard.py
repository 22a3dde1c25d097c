"""The master's live dashboard in a real headless Chromium, against a real cluster.

A copy of the example game runs as a cluster (``pomelo-twisted start``, as ``make run``);
Playwright for Python drives Debian's ``chromium`` (``executable_path``; no browser is
ever downloaded) in a thread, so the reactor goes on running the test's own waits. The
page must list every server of the cluster, and follow a restart made with the CLI
(``pomelo-twisted restart``) and one made from the page itself (admin secret asked in
its dialog: a wrong one refused, the right one accepted).

``POMELO_DASHBOARD_SCREENSHOT=docs/dashboard.png`` also writes a screenshot of the page
with chat bots running (how ``docs/dashboard.png`` is made).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from pomelo_twisted.dashboard import DashboardService
from pomelo_twisted.interfaces import IServerReactor
from pomelo_twisted.testing.browser import browser_missing, launch_chromium

from ..dashboard.fakes import FakeCluster
from .cluster import ClusterCase, ClusterProcess, _env
from .game import REPO

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the [test] extra installs it
    sync_playwright = None  # type: ignore[assignment]

#: Debian's chromium (`make services` installs it).
SCREENSHOT = os.environ.get("POMELO_DASHBOARD_SCREENSHOT")
#: Milliseconds a wait of the page may take (a restart takes a few seconds).
WAIT_MS = 60_000
PID_CHANGED = """([id, before]) => {
  const row = document.querySelector(`tr[data-server="${id}"]`);
  if (!row) return false;
  const pid = row.querySelector('[data-field="pid"]').textContent;
  return pid !== before && pid !== "—" && row.dataset.state === "up";
}"""


def cli(cluster: ClusterProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``pomelo-twisted ARGS --app GAME``, blocking (this runs in the browser's thread)."""
    return subprocess.run(
        [sys.executable, "-m", "pomelo_twisted.admin.cli", *args, "--app", str(cluster.game)],
        env=_env(),
        cwd=cluster.workdir,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def open_page(playwright: Any, url: str, errors: list[str]) -> tuple[Any, Page]:
    """Headless chromium on ``url``; (browser, page); script errors go to ``errors``."""
    browser = launch_chromium(playwright)
    page = browser.new_page(viewport={"width": 1360, "height": 620})
    page.set_default_timeout(WAIT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    return browser, page


class DashboardRenderingTests(TestCase):
    """The page in headless Chromium against a fake master reporting metrics."""

    timeout = 120

    def setUp(self) -> None:
        missing = browser_missing()
        if missing is not None:
            raise self.skipTest(missing)

    def test_metrics_rendered(self) -> None:
        """Requests/s, RPC errors, an open breaker and a server's routes (count, p50, p99
        in ms) are shown; a silent server is marked so; absent values are "—"; updates keep
        the rows (and the keyboard focus) in place."""
        cluster = FakeCluster()
        chat = {
            "connections": 0,
            "requests": 0,
            "routes": {"chat.chatHandler.send": {"count": 41, "p50": 0.0021, "p99": 0.0187}},
            "rpc": {"calls": 90, "errors": 3, "timeouts": 1},
            "breakers": {"connector-1": "open"},
        }
        cluster.stats_of["chat-1"] = chat
        cluster.stats_of["connector-1"] = None  # registered, but its stats do not answer
        service = DashboardService(
            cast(IServerReactor, reactor),
            cluster,
            "tcp:0:interface=127.0.0.1",
            admin_secret=None,
            interval=0.1,
        )
        service.startService()
        self.addCleanup(service.stopService)

        def count() -> None:  # the chat server serves 10 requests per snapshot interval
            chat["requests"] += 1
            chat["routes"]["chat.chatHandler.send"]["count"] += 1  # type: ignore[index]

        counting = LoopingCall(count)
        counting.clock = reactor
        counting.start(0.01)
        self.addCleanup(counting.stop)
        assert service.url is not None
        return deferToThread(self.check, service.url).addCallback(self.assertEqual, [])

    def check(self, url: str) -> list[str]:
        errors: list[str] = []
        with sync_playwright() as playwright:
            browser, page = open_page(playwright, url, errors)
            try:
                row = 'tr[data-server="chat-1"]'
                expect(page.locator(f'{row} [data-field="rpcErrors"]')).to_have_text("3")
                expect(page.locator(f'{row} [data-field="breakers"]')).to_have_text(
                    "connector-1: open"
                )
                page.wait_for_function(
                    """() => /^\\d+(\\.\\d)?$/.test(document.querySelector(
                        'tr[data-server="chat-1"] [data-field="requestsPerSecond"]').textContent)"""
                )
                silent = page.locator('tr[data-server="connector-1"] [data-field="state"]')
                expect(silent).to_have_text("silent")
                missing = page.locator('tr[data-server="connector-1"] [data-field="rpcErrors"]')
                expect(missing).to_have_text("—")
                page.get_by_role("button", name="chat-1", exact=True).click()
                routes = page.locator('tr[data-routes-of="chat-1"] tbody tr')
                expect(routes).to_have_count(1)
                cells = routes.first.locator("th, td")
                expect(cells.nth(0)).to_have_text("chat.chatHandler.send")
                expect(cells.nth(2)).to_have_text("2.1 ms")
                expect(cells.nth(3)).to_have_text("18.7 ms")
                # Rows are updated in place: the focused button stays, and stays focused.
                page.get_by_role("button", name="chat-1", exact=True).focus()
                page.evaluate("document.querySelector('tr[data-server=\"chat-1\"]').id = 'kept'")
                count = cells.nth(1).inner_text()
                expect(cells.nth(1)).not_to_have_text(count)  # a later snapshot came
                self.assertTrue(
                    page.evaluate(
                        "document.activeElement.closest('tr') === document.getElementById('kept')"
                    )
                )
            finally:
                browser.close()
        return errors


class DashboardBrowserTests(ClusterCase):
    """The page in headless Chromium against the example cluster."""

    timeout = 240

    def setUp(self) -> None:
        missing = browser_missing()
        if missing is not None:
            raise self.skipTest(missing)

    @inlineCallbacks
    def test_page_lists_the_cluster_and_follows_restarts(self) -> Any:
        """The page lists the 5 processes up and live; a CLI restart changes the row's pid;
        from the page a wrong secret is refused, the right one restarts; no script error."""
        cluster = yield self.started()
        port = cluster.layout["master"]["dashboardPort"]
        url = f"http://127.0.0.1:{port}/"
        self.assertIn(f"dashboard: {url}", cluster.log())  # what `make run` prints
        errors: list[str] = yield deferToThread(self.browse, cluster, url)
        expected = "the server responded with a status of 401"  # the wrong secret, on purpose
        self.assertEqual([e for e in errors if expected not in e], [])
        self.assertEqual(cluster.tracebacks(), {})

    def browse(self, cluster: ClusterProcess, url: str) -> list[str]:
        """Drive the page (in a thread); the script errors the page reported."""
        errors: list[str] = []
        with sync_playwright() as playwright:
            browser, page = open_page(playwright, url, errors)
            try:
                self.lists_the_cluster(page, cluster)
                if SCREENSHOT:
                    self.screenshot(page, cluster, Path(SCREENSHOT))
                self.follows_a_cli_restart(page, cluster)
                self.restarts_from_the_page(page, cluster)
            finally:
                browser.close()
        return errors

    def lists_the_cluster(self, page: Page, cluster: ClusterProcess) -> None:
        expect(page.locator("#stream-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("tr[data-server]")).to_have_count(5, timeout=WAIT_MS)
        for server_id in ["master-server-1", *cluster.server_ids()]:
            state = page.locator(f'tr[data-server="{server_id}"] [data-field="state"]')
            expect(state).to_have_text("up", timeout=WAIT_MS)
        kind = page.locator('tr[data-server="chat-server-1"] [data-field="type"]')
        expect(kind).to_have_text("chat")
        toggle = page.get_by_role("button", name="chat-server-1", exact=True)
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator('tr[data-routes-of="chat-server-1"]')).to_be_visible()

    def follows_a_cli_restart(self, page: Page, cluster: ClusterProcess) -> None:
        before = self.pid(page, "chat-server-1")
        done = cli(cluster, "restart", "chat-server-1")
        self.assertEqual(done.returncode, 0, done.stderr)
        page.wait_for_function(PID_CHANGED, arg=["chat-server-1", before])

    def restarts_from_the_page(self, page: Page, cluster: ClusterProcess) -> None:
        restart = page.get_by_role("button", name="Restart chat-server-2")
        result = page.locator("#result")
        self.give_secret(page, restart.click, "not-the-admin-secret")
        expect(result).to_contain_text("refused: the admin secret is missing or wrong")
        before = self.pid(page, "chat-server-2")
        self.give_secret(page, restart.click, cluster.layout["master"]["adminSecret"])
        expect(result).to_contain_text("restart chat-server-2: done", timeout=WAIT_MS)
        page.wait_for_function(PID_CHANGED, arg=["chat-server-2", before])

    @staticmethod
    def give_secret(page: Page, act: Callable[[], None], secret: str) -> None:
        act()
        dialog = page.locator("#secret-dialog")
        expect(dialog).to_be_visible()
        page.fill("#secret-input", secret)
        page.click("#secret-ok")
        expect(dialog).to_be_hidden()

    @staticmethod
    def pid(page: Page, server_id: str) -> str:
        cell = page.locator(f'tr[data-server="{server_id}"] [data-field="pid"]')
        text = cell.inner_text()
        assert re.fullmatch(r"\d+", text), text
        return text

    def screenshot(self, page: Page, cluster: ClusterProcess, path: Path) -> None:
        """The page with chat bots on both connectors: connections, rates, and the routes
        of connector-server-1 with their p50/p99."""
        bots = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pomelo_twisted.admin.cli",
                    "bot",
                    str(REPO / "example_game" / "bots" / "chat.py"),
                    "--target",
                    f"tcp:127.0.0.1:{cluster.client_port(connector)}",
                    "--bots",
                    "12",
                    "--duration",
                    "20",
                    "--seed",
                    str(seed),
                    "--quiet",
                ],
                env=_env(),
                cwd=cluster.workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for seed, connector in enumerate(["connector-server-1", "connector-server-2"])
        ]
        try:
            for connector in ("connector-server-1", "connector-server-2"):
                cell = page.locator(f'tr[data-server="{connector}"] [data-field="connections"]')
                expect(cell).to_have_text("12", timeout=WAIT_MS)
            page.get_by_role("button", name="chat-server-1", exact=True).click()  # fold it
            page.get_by_role("button", name="connector-server-1", exact=True).click()
            routes = page.locator('tr[data-routes-of="connector-server-1"]')
            expect(routes).to_contain_text("chat.chatHandler.send", timeout=WAIT_MS)
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
        finally:
            for bot in bots:
                bot.terminate()
                bot.wait(30)
