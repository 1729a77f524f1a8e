"""CLI verbs of ingest: ``serve``, ``replay FILE...``, ``quarantine list|show|replay`` (``replay ID --as-later``:
the operator's decision that a message refused for an order that cannot be told is later; order35; ``replay ID
--as-owner REASON``: that a message accepted with its change of an order held is the number's owner's; ord40).

``serve`` runs uvicorn (the FastAPI app) and the MLLP listener in one process and one event
loop, after finishing any message stored but not processed and replaying the files given
with ``--replay``. ``replay`` pushes files through the same pipeline as the listeners (all
messages queued at once, so they are group-committed), with a progress bar and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from adapters.listeners.files import read_messages
from engine.settings import Settings

log = logging.getLogger("huren.cli")


def register(sub: argparse._SubParsersAction, serve: argparse.ArgumentParser | None = None) -> None:
    """Add the ingest verbs to the ``huren`` parser (``serve`` may already exist)."""
    if serve is None:
        serve = sub.add_parser("serve", help="run the HTTP API and the MLLP listener")
        serve.add_argument("--replay", nargs="*", default=[], help="files or folders of HL7 v2 messages to replay at start")
    serve.add_argument("--no-mllp", action="store_true", help="HTTP only")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the HTTP port (reads scale with cores; MLLP in the first)")
    serve.set_defaults(handler=cmd_serve)

    replay = sub.add_parser("replay", help="send HL7 v2 files through the ingest pipeline")
    replay.add_argument("files", nargs="+", help="files or folders; one or many messages per file")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(handler=cmd_replay)

    quarantine = sub.add_parser("quarantine", help="list, show or replay quarantined messages")
    qsub = quarantine.add_subparsers(dest="action", required=True)
    qlist = qsub.add_parser("list", help="quarantined messages, newest first")
    qlist.add_argument("--facility", help="only this sending facility (MSH-4.1)")
    qlist.add_argument("--limit", type=int, default=50)
    qlist.add_argument("--processing-id", help="messages of these MSH-11 ids instead (e.g. T,D), of any status: "
                       "T/D stored as clinical data before MSH-11 was judged are processed, not quarantined")
    qlist.add_argument("--json", action="store_true", help="one JSON document per line")
    qshow = qsub.add_parser("show", help="one message: reason, errors and text")
    qshow.add_argument("id")
    qreplay = qsub.add_parser("replay", help="run quarantined messages through the pipeline again")
    qreplay.add_argument("ids", nargs="*", help="message ids (see list)")
    qreplay.add_argument("--all", action="store_true", help="every quarantined message")
    qreplay.add_argument("--file", help="a corrected copy of the message (one id only)")
    qreplay.add_argument("--as-later", action="store_true",
                         help="the operator's decision: take each named message (refused ERR-3 206, its order "
                              "against a stored result not told) as later; named ids only, not with --all or --file")
    qreplay.add_argument("--as-owner", metavar="REASON",
                         help="the operator's decision, with its reason: take each named message's held change of an "
                              "order (AA, W 204: the order's history names another application for its number), or "
                              "of a record's resident ID number (AA, W 205: another application registered it), as "
                              "the number's owner's; applied once; named ids only, not with --all or --file")
    quarantine.set_defaults(handler=cmd_quarantine)


def _engine(settings: Settings) -> Any:
    from engine.engine import Engine

    return Engine(settings)


# -- replay -----------------------------------------------------------------------------------

def replay_files(engine: Any, paths: list[str], *, out: TextIO | None = None, progress: bool = True) -> Counter[str]:
    """Queue every message of ``paths``, wait for all ACKs; returns counts by MSA-1 code."""
    out = out or sys.stderr
    started = time.perf_counter()
    pending = []
    for path, index, raw in read_messages(paths):
        pending.append((path, index, engine.ingestor.submit(raw, channel="replay", peer=f"file:{path}#{index}")))
    counts: Counter[str] = Counter()
    total = len(pending)
    for n, (path, index, fut) in enumerate(pending, 1):
        outcome = fut.result()
        counts[outcome.code] += 1
        if outcome.duplicate:
            counts["duplicate"] += 1
        if outcome.code != "AA":
            reason = next((str(e) for e in outcome.errors if e.severity in ("E", "F")), "")
            clear = "\r\x1b[K" if progress and out.isatty() else ""
            out.write(f"{clear}{path}#{index}: {outcome.code} {reason}\n")
        if progress and (n == total or n % 50 == 0 or outcome.code != "AA"):
            width = 30
            filled = int(width * n / total) if total else width
            out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {n}/{total}")
            out.flush()
    elapsed = time.perf_counter() - started
    if progress and total:
        out.write("\n")
    rate = total / elapsed if elapsed > 0 else 0.0
    out.write(f"{total} messages in {elapsed:.2f}s ({rate:.0f}/s): "
              f"{counts['AA']} accepted (AA), {counts['AE']} errors (AE), {counts['AR']} rejected (AR), "
              f"{counts['duplicate']} already received\n")
    return counts


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    with _engine(settings) as engine:
        try:
            counts = replay_files(engine, args.files, progress=not args.quiet)
        except FileNotFoundError as exc:
            print(f"huren replay: {exc}", file=sys.stderr)
            return 2
    return 0 if counts["AE"] + counts["AR"] == 0 else 1


# -- quarantine ---------------------------------------------------------------------------------

def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.hl7v2.processing import parse_ids
    from engine.messages import QUARANTINED, raw_of, summary

    with _engine(settings) as engine:
        messages = engine.ingestor.messages
        if args.action == "list":
            ids = parse_ids(args.processing_id) if args.processing_id else None
            docs = messages.quarantined(facility=args.facility, limit=args.limit, processing_ids=ids)
            if args.json:
                for d in docs:
                    print(json.dumps(summary(d), ensure_ascii=False))
            else:
                if ids is None:
                    print(f"{messages.count(QUARANTINED, args.facility)} quarantined")
                else:
                    print(f"{messages.count(None, args.facility, processing_ids=ids)} with processing id "
                          f"{', '.join(sorted(ids))}")
                for d in docs:
                    print(f"{d['_id']}  {d['received_at'][:19]}  {d.get('facility') or '-':<12} "
                          f"{d.get('message_type') or '-':<8} {d.get('control_id') or '-':<20} {d.get('reason')}")
            return 0
        if args.action == "show":
            doc = messages.get(args.id)
            if doc is None:
                print(f"huren quarantine: no message {args.id!r}", file=sys.stderr)
                return 2
            from adapters.hl7v2.header import stored_text

            info = summary(doc)
            info.pop("replays", None)
            print(json.dumps(info, ensure_ascii=False, indent=2))
            # read as the pipeline read it: the sender's set, MSH-18, the HTTP charset in its peer (hl7fix28)
            print(stored_text(raw_of(doc), str(doc.get("peer") or ""), engine.site)[0].replace("\r", "\n"))
            return 0
        ids = list(args.ids)
        if args.all:
            ids += [d["_id"] for d in messages.quarantined(limit=100_000)]
        if not ids:
            print("huren quarantine replay: name message ids or --all", file=sys.stderr)
            return 2
        corrected = Path(args.file).read_bytes() if args.file else None
        if corrected is not None and len(ids) != 1:
            print("huren quarantine replay: --file needs exactly one id", file=sys.stderr)
            return 2
        as_later = bool(getattr(args, "as_later", False))
        owner = getattr(args, "as_owner", None)
        if as_later and (args.all or corrected is not None):
            print("huren quarantine replay: --as-later decides for the messages named, as they were refused "
                  "(not with --all or --file)", file=sys.stderr)
            return 2
        if owner is not None and (args.all or corrected is not None or as_later or not owner.strip()):
            print("huren quarantine replay: --as-owner REASON decides for the messages named, as they were held, with "
                  "words saying why (not with --all, --file or --as-later)", file=sys.stderr)
            return 2
        if owner is not None:  # (the reason as the API keeps it, by its one rule: ``message_time.reason_of``)
            from engine.message_time import reason_of

            try:
                owner = reason_of(owner)
            except ValueError as exc:
                print(f"huren quarantine replay: --as-owner: {exc}", file=sys.stderr)
                return 2
        from engine.ingest import AlreadyDecided

        failed = 0
        for doc_id in ids:
            decided = _decision() if as_later else _decision("owner", owner) if owner is not None else None
            try:
                outcome = engine.ingestor.replay(doc_id, actor=decided.by if decided else "cli", raw=corrected,
                                                 decided=decided)
            except AlreadyDecided as exc:  # (applied once: the decision applied is the answer)
                print(f"{doc_id}: already taken as the owner's by {exc.decision.get('by')} at "
                      f"{exc.decision.get('at')} ({exc.decision.get('reason')})")
                continue
            except ValueError as exc:
                print(f"{doc_id}: {exc}", file=sys.stderr)
                failed += 1
                continue
            if outcome is None:
                print(f"{doc_id}: no such message", file=sys.stderr)
                failed += 1
                continue
            reason = next((str(e) for e in outcome.errors if e.severity in ("E", "F")), "")
            if decided is not None and outcome.code == "AA":  # (whether the decision answered anything: ordfix35)
                used = ((messages.get(doc_id) or {}).get("decision") or {}).get("used")
                reason = (("taken as the owner's" if used else "decision not used: nothing of it was held")
                          if decided.kind == "owner" else
                          "taken as later" if used else "decision not used: the order was told without it")
            print(f"{doc_id}: {outcome.code} {outcome.status} {reason}".rstrip())
            failed += outcome.code != "AA"
        return 0 if failed == 0 else 1


def _decision(kind: str = "later", reason: str = "") -> Any:
    """The decision of whoever runs the CLI on the server (its account: the one a console names),
    ``engine.message_time.decision`` (order35; ``kind`` owner with its ``reason``: ord40)."""
    import getpass

    from engine.message_time import decision
    from engine.messages import now_iso

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return decision(by=f"cli:{user}", system="urn:huren:cli-user", at=now_iso(), kind=kind, reason=reason)


# -- serve ----------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workers = int(getattr(args, "workers", 1) or 1)
    if workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    with _engine(settings) as engine:
        recovered = engine.ingestor.recover()
        if recovered:
            log.info("finished %d messages stored before the last stop", recovered)
        if args.replay:
            try:
                replay_files(engine, args.replay, progress=False)
            except FileNotFoundError as exc:  # serve anyway: the listeners matter more than a demo feed
                log.error("--replay: %s", exc)
        if workers == 1:
            asyncio.run(serve(engine, mllp=not getattr(args, "no_mllp", False)))
            return 0
    # several workers: this process's engine is closed first (no SQLite connection crosses a fork)
    from engine.api.workers import run_workers

    return run_workers(settings, workers, serve, mllp=not getattr(args, "no_mllp", False), open_engine=_engine)


async def serve(engine: Any, *, mllp: bool = True, sockets: list[Any] | None = None) -> None:
    """Serve HTTP (and MLLP) until stopped; ``sockets``: an already bound socket to accept on
    (``--workers``) instead of binding ``http_host:http_port``."""
    import uvicorn

    from adapters.listeners.ingest_handler import IngestHandler
    from adapters.listeners.mllp import MLLPServer, build_ssl_context
    from engine import heap
    from engine.api.app import create_app

    settings: Settings = engine.settings
    app = create_app(engine)
    heap.settle()  # the engine and the app are loaded: what is alive now stays for the process's life
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level="info",
                            lifespan="on", access_log=False)
    http = uvicorn.Server(config)
    listener = None
    if mllp:
        listener = MLLPServer(
            IngestHandler(engine.ingestor), host=settings.mllp_host, port=settings.mllp_port,
            max_message_bytes=settings.mllp_max_message_bytes, idle_timeout=settings.mllp_idle_timeout,
            ssl_context=build_ssl_context(settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca),
        )
        await listener.start()
        engine.ingestor.listeners.append(listener)
    try:  # uvicorn handles SIGINT / SIGTERM and returns from serve()
        await http.serve(sockets=sockets)
    finally:
        if listener is not None:
            await listener.stop()
            engine.ingestor.listeners.remove(listener)
