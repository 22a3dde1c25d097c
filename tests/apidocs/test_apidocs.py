"""Docs and client stubs from the typed routes of the example game: the Markdown
reference, the AsyncAPI 3 document (valid by the published schema), Python stubs (mypy
--strict, and they send what they say) and TypeScript stubs (tsc --noEmit)."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.admin.cli import main
from pomelo_twisted.apidocs import (
    asyncapi_document,
    collect_routes,
    markdown_reference,
    write_docs,
    write_stubs,
)

from .tools import asyncapi_errors, mypy, tsc

GAME = Path(__file__).resolve().parents[2] / "example_game"
SEND = "chat.chatHandler.send"


class CollectTests(SynchronousTestCase):
    """What the docs are made of."""

    def test_routes_of_example_game(self) -> None:
        """Every handler route is listed; chat send is typed, connector echo is not."""
        routes = {r.route: r for r in collect_routes(GAME)}
        self.assertIn("connector.entryHandler.entry", routes)
        self.assertTrue(routes[SEND].typed)
        self.assertFalse(routes["connector.entryHandler.echo"].typed)

    def test_markdown(self) -> None:
        """The reference names each route, its fields and its pushes."""
        text = markdown_reference(collect_routes(GAME), "example_game")
        self.assertIn(f"### `{SEND}`", text)
        self.assertIn("| `content` | `str` | yes |", text)
        self.assertIn("**Pushes** `onChat`: `ChatMessage`", text)
        self.assertIn("| `from` | `str` | yes |", text)


class AsyncApiTests(SynchronousTestCase):
    """The AsyncAPI 3 document."""

    def setUp(self) -> None:
        self.document = asyncapi_document(collect_routes(GAME), "example_game")

    def test_valid(self) -> None:
        """The document validates against the AsyncAPI 3.0.0 JSON Schema."""
        self.assertEqual(asyncapi_errors(self.document), [])

    def test_schema_check_can_fail(self) -> None:
        """The check refuses a document with an unknown operation action."""
        self.document["operations"][SEND]["action"] = "shout"
        self.assertNotEqual(asyncapi_errors(self.document), [])

    def test_request_response_push_error(self) -> None:
        """A typed route's channel refers to its request, response and the error schema;
        its push has a receive operation."""
        messages = self.document["channels"][SEND]["messages"]
        self.assertEqual(
            messages["request"]["payload"], {"$ref": "#/components/schemas/SendRequest"}
        )
        self.assertEqual(messages["error"]["payload"], {"$ref": "#/components/schemas/Error"})
        schemas = self.document["components"]["schemas"]
        self.assertEqual(schemas["SendRequest"]["required"], ["rid", "content"])
        self.assertEqual(self.document["operations"]["onChat"]["action"], "receive")


class Recorder:
    """A client of the stubs: records each request, answers ``{"code": 200}``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def request(self, route: str, msg: Any) -> Deferred[Any]:
        self.sent.append((route, msg))
        return succeed({"code": 200})


def temp_dir(case: SynchronousTestCase) -> Path:
    """A temporary folder removed after the test (not mktemp: under pytest that is in the
    repository)."""
    path = Path(tempfile.mkdtemp(prefix="pomelo-apidocs-"))
    case.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("pomelo_api_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


class PythonStubTests(SynchronousTestCase):
    """The Python stubs."""

    def setUp(self) -> None:
        self.out = temp_dir(self)
        self.path = write_stubs(GAME, "python", self.out)

    def test_send(self) -> None:
        """``await api.chat.send(rid=..., content=...)`` sends the route and the body."""
        api = load(self.path).Api(recorder := Recorder())
        d = Deferred.fromCoroutine(api.chat.send(rid="lobby", content="hi"))
        self.assertEqual(self.successResultOf(d), {"code": 200})
        self.assertEqual(recorder.sent, [(SEND, {"rid": "lobby", "content": "hi"})])

    def test_mypy(self) -> None:
        """The stubs and a program using them pass mypy --strict; a wrong argument fails."""
        use = self.out / "use.py"
        use.write_text(
            "from pomelo_api import Api, Ok\n\n\n"
            "async def go(api: Api) -> Ok:\n"
            '    return await api.chat.send(rid="lobby", content="hi")\n'
        )
        done = mypy(self.path, use)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        use.write_text(
            "from pomelo_api import Api, Ok\n\n\n"
            "async def go(api: Api) -> Ok:\n"
            '    return await api.chat.send(rid=1, content="hi")\n'
        )
        done = mypy(self.path, use)
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertIn('"rid"', done.stdout)


class TypeScriptStubTests(SynchronousTestCase):
    """The TypeScript stubs."""

    def test_tsc(self) -> None:
        """The stubs and a program using them compile with tsc --noEmit; a wrong type fails."""
        out = temp_dir(self)
        path = write_stubs(GAME, "typescript", out)
        use = out / "use.ts"
        use.write_text(
            'import { Api, Ok, Requester } from "./pomelo_api";\n'
            "export async function go(client: Requester): Promise<Ok> {\n"
            '  return await new Api(client).chat.send({ rid: "lobby", content: "hi" });\n'
            "}\n"
        )
        done = tsc(path, use)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        use.write_text(use.read_text().replace('rid: "lobby"', "rid: 1"))
        done = tsc(path, use)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("TS2322", done.stdout)


class CommandTests(SynchronousTestCase):
    """The command line."""

    def test_docs_and_stubs(self) -> None:
        """``docs`` writes routes.md and asyncapi.json, ``stubs`` the language's module."""
        out = temp_dir(self)
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        self.assertEqual(main(["docs", "--app", str(GAME), "--out", str(out)]), 0)
        self.assertEqual(
            main(["stubs", "--app", str(GAME), "--lang", "python", "--out", str(out)]), 0
        )
        self.assertEqual(
            sorted(p.name for p in out.iterdir()), ["asyncapi.json", "pomelo_api.py", "routes.md"]
        )
        self.assertEqual(json.loads((out / "asyncapi.json").read_text())["asyncapi"], "3.0.0")
        self.assertIn(f"wrote {out / 'routes.md'}", stdout.getvalue())

    def test_write_docs_returns_paths(self) -> None:
        """write_docs names the two files it wrote."""
        out = temp_dir(self)
        self.assertEqual([p.name for p in write_docs(GAME, out)], ["routes.md", "asyncapi.json"])
