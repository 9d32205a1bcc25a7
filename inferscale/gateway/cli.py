"""`inferscale serve` and `inferscale keys …` (registered into the main parser by `register`)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import sys
from typing import Any

from ..errors import InferscaleError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from ..cache import chroma_server
    from ..settings import Settings
    from .app import AUTH_ENV

    if args.no_auth and not _is_loopback(args.host):
        raise InferscaleError(f"--no-auth is refused on a non-loopback host ({args.host}): "
                              "anyone who can reach it would spend your budget; create a key instead "
                              "(inferscale keys create NAME)")
    if args.workers < 1:
        raise InferscaleError(f"--workers must be >= 1, got {args.workers}")
    if not 0 < args.port < 65536:
        raise InferscaleError(f"--port must be in 1..65535, got {args.port}")
    import uvicorn

    settings = Settings.from_env()
    settings.ensure_dirs()
    _check_database(settings)
    server = None
    if not os.environ.get(chroma_server.URL_ENV):
        try:
            server = chroma_server.ChromaServer(settings.chroma_dir).start()
        except chroma_server.ChromaBusy as exc:
            raise InferscaleError(str(exc)) from None
        os.environ[chroma_server.URL_ENV] = server.url  # the workers inherit it
    os.environ[AUTH_ENV] = "0" if args.no_auth else "1"
    print(f"inferscale gateway on http://{args.host}:{args.port}/v1 "
          f"({args.workers} worker(s), auth {'off' if args.no_auth else 'on'}, "
          f"L1 index via {os.environ[chroma_server.URL_ENV]})", flush=True)
    try:
        uvicorn.run("inferscale.gateway.app:factory", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level=args.log_level, access_log=False,
                    timeout_graceful_shutdown=10)
    finally:
        if server is not None:
            server.stop()
    return 0


def _check_database(settings: Any) -> None:
    from ..db import Database

    Database(settings.db_path).close()  # migrate once here, not racing in N workers


def _store() -> Any:
    from ..db import Database
    from ..settings import Settings
    from .keys import KeyStore

    settings = Settings.from_env()
    settings.ensure_dirs()
    return KeyStore(Database(settings.db_path))


def cmd_keys(args: argparse.Namespace) -> int:
    store = _store()
    if args.action == "create":
        if not args.name:
            raise InferscaleError("keys create needs a NAME")
        if args.budget_usd is not None and (not math.isfinite(args.budget_usd) or args.budget_usd < 0):
            raise InferscaleError(f"--budget-usd must be a finite number >= 0, got {args.budget_usd}")
        record, key = store.create(args.name, args.budget_usd)
        if args.json:
            print(json.dumps({**record.to_json(), "key": key}))
        else:
            print(key)
            print(f"key {record.name!r} created (id {record.id}); it is shown only this once",
                  file=sys.stderr)
        return 0
    if args.action == "revoke":
        if not args.name:
            raise InferscaleError("keys revoke needs a NAME")
        record = store.revoke(args.name)
        print(f"key {record.name!r} (id {record.id}) revoked")
        return 0
    keys = store.list()
    if args.json:
        print(json.dumps([k.to_json() for k in keys]))
        return 0
    for k in keys:
        budget = "no budget" if k.budget_usd is None else f"budget ${k.budget_usd:.4f}"
        state = "active" if k.active else "revoked"
        print(f"{k.name:24} {k.id}  {state:8} spent ${k.spent_usd:.6f}  {budget}  {k.requests} request(s)")
    return 0


def register(sub: Any) -> None:
    """Add `serve` and `keys` to the main parser's subcommands."""
    s = sub.add_parser("serve", help="OpenAI-compatible gateway: /v1/chat/completions, /v1/models")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--no-auth", action="store_true", help="accept requests without a key (loopback only)")
    s.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(fn=cmd_serve)

    k = sub.add_parser("keys", help="create, list or revoke gateway API keys")
    k.add_argument("action", nargs="?", choices=["create", "list", "revoke"], default="list")
    k.add_argument("name", nargs="?")
    k.add_argument("--budget-usd", type=float, help="refuse the key's requests (HTTP 429) once it spent this")
    k.add_argument("--json", action="store_true")
    k.set_defaults(fn=cmd_keys)
