"""A Hugging Face Hub stand-in on loopback, so push and load by id are tested with no network.

It serves the routes ``huggingface_hub`` 2.x calls (read from its source: ``create_repo``,
``create_commit``, ``snapshot_download``), keeps repos in memory as git-like commits, and
checks the write token. No library offers a local Hub; the protocol subset is small:

::

    POST /api/repos/create                      create_repo (409 if it exists)
    POST /api/validate-yaml                     create_commit checks README.md's front matter
    POST /api/models/{repo}/preupload/{rev}     upload mode per file: all "regular" (inline)
    POST /api/models/{repo}/commit/{rev}        NDJSON: a header line, then base64 files
    GET  /api/models/{repo}[/revision/{rev}]    repo_info: the commit sha
    GET  /api/models/{repo}/tree/{rev}          list_repo_tree: path, size, blob id
    HEAD/GET /{repo}/resolve/{rev}/{path}       hf_hub_download: X-Repo-Commit, ETag, bytes
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from huggingface_hub import constants

TOKEN = "hf_standin_write_token"


@dataclass
class Repo:
    """Commits by sha (each the whole file tree) and branches pointing at them."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"0" * 40: {}})
    branches: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    pushes: int = 0

    def files(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        sha = self.branches.get(revision, revision)
        return (sha, self.commits[sha]) if sha in self.commits else None


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers={"X-Error-Code": code})


def create_app(repos: dict[str, Repo], base_url: list[str]) -> FastAPI:
    """The stand-in's routes over ``repos`` (repo id -> :class:`Repo`)."""
    app = FastAPI()

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def lookup(org: str, name: str, revision: str) -> tuple[str, dict[str, bytes]] | Response:
        repo = repos.get(f"{org}/{name}")
        if repo is None:
            return _error(404, "RepoNotFound", f"Repository {org}/{name} not found")
        found = repo.files(revision)
        return found or _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")

    @app.post("/api/repos/create")
    async def create(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "Invalid credentials")
        body = await request.json()
        repo_id = f"{body['organization']}/{body['name']}"
        url = {"url": f"{base_url[0]}/{repo_id}"}
        if repo_id in repos:  # the client reads the url from the 409 too (exist_ok)
            return JSONResponse({"error": "You already created this model repo", **url}, 409)
        repos[repo_id] = Repo()
        return JSONResponse(url)

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request) -> Response:
        content = (await request.json())["content"]
        front = content.split("---\n")[1] if content.startswith("---\n") else ""
        if not isinstance(yaml.safe_load(front), dict):
            return JSONResponse({"errors": [{"message": "no YAML metadata"}]}, 400)
        return JSONResponse({"errors": [], "warnings": []})

    @app.post("/api/models/{org}/{name}/preupload/{revision}")
    async def preupload(org: str, name: str, revision: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "Invalid credentials")
        found = lookup(org, name, revision)
        if isinstance(found, Response):
            return found
        files = (await request.json())["files"]
        modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
        return JSONResponse({"files": modes})

    @app.post("/api/models/{org}/{name}/commit/{revision}")
    async def commit(org: str, name: str, revision: str, request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized", "Invalid credentials")
        found = lookup(org, name, revision)
        if isinstance(found, Response):
            return found
        parent, files = found[0], dict(found[1])
        lines = [json.loads(line) for line in (await request.body()).splitlines() if line]
        for line in lines[1:]:
            if line["key"] != "file":
                return JSONResponse({"error": f"unsupported operation {line['key']}"}, 400)
            files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        tree = json.dumps([parent, sorted((p, _blob_id(c)) for p, c in files.items())])
        sha = hashlib.sha1(tree.encode()).hexdigest()
        repo = repos[f"{org}/{name}"]
        repo.commits[sha], repo.branches[revision] = files, sha
        repo.pushes += 1
        url = f"{base_url[0]}/{org}/{name}/commit/{sha}"
        return JSONResponse({"commitUrl": url, "commitOid": sha})

    @app.get("/api/models/{org}/{name}")
    @app.get("/api/models/{org}/{name}/revision/{revision}")
    async def info(org: str, name: str, revision: str = "main") -> Response:
        found = lookup(org, name, revision)
        if isinstance(found, Response):
            return found
        siblings = [{"rfilename": path} for path in sorted(found[1])]
        return JSONResponse({"id": f"{org}/{name}", "sha": found[0], "siblings": siblings})

    @app.get("/api/models/{org}/{name}/tree/{revision}")
    async def tree(org: str, name: str, revision: str) -> Response:
        found = lookup(org, name, revision)
        if isinstance(found, Response):
            return found
        entries = [
            {"type": "file", "path": path, "size": len(content), "oid": _blob_id(content)}
            for path, content in sorted(found[1].items())
        ]
        return JSONResponse(entries)

    @app.api_route("/{org}/{name}/resolve/{revision}/{path:path}", methods=["GET", "HEAD"])
    async def resolve(org: str, name: str, revision: str, path: str) -> Response:
        found = lookup(org, name, revision)
        if isinstance(found, Response):
            return found
        sha, files = found
        if path not in files:
            return _error(404, "EntryNotFound", f"{path} does not exist at {revision}")
        headers = {"X-Repo-Commit": sha, "ETag": f'"{_blob_id(files[path])}"'}
        return Response(files[path], headers=headers, media_type="application/octet-stream")

    return app


@dataclass
class HubStandIn:
    """A running stand-in: its URL, token and repos; :meth:`stop` takes it off the network."""

    url: str
    token: str
    repos: dict[str, Repo]
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True  # the thread's server loop sees it within 0.1 s
        self.thread.join(timeout=10)


@contextmanager
def serve() -> Iterator[HubStandIn]:
    """Run the stand-in on a free loopback port in a thread until the generator closes."""
    repos: dict[str, Repo] = {}
    base_url: list[str] = []
    config = uvicorn.Config(create_app(repos, base_url), "127.0.0.1", 0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the Hub stand-in did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url.append(f"http://127.0.0.1:{port}")
    standin = HubStandIn(base_url[0], TOKEN, repos, server, thread)
    try:
        yield standin
    finally:
        standin.stop()


def online(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubStandIn]:
    """A running stand-in as the Hub endpoint (what ``HF_ENDPOINT`` sets), online, for a
    fixture to yield from; the tests' default is offline (``HF_HUB_OFFLINE=1``, conftest)."""
    with serve() as standin:
        monkeypatch.setattr(constants, "ENDPOINT", standin.url)
        template = standin.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield standin
