"""``huren audit verify|export|checkpoint|repair|rotate-key`` (``huren keys init`` calls ``engine.audit.keys.init_keys``)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from engine.audit.keys import AuditKeys, rotate_keys
from engine.audit.log import AuditLog
from engine.settings import Settings

# ``huren audit verify`` exit codes: 0 verified, 1 a problem found, 2 cannot verify (not an export,
# a malformed header/key/checkpoint/seal line or first record line, unreadable), 3 consistent but not
# proven: no --public-key (checked against the keys inside the export, or online against those in
# data_dir/keys beside the log: either proves nothing against a forger who re-signed with their own),
# or an export whose header is not signed (an earlier release's, or made without the private key)
SELF_KEYED_EXIT = 3


def open_log(settings: Settings, *, create_keys: bool = False, segment: bool = True,
             writer: bool = True) -> AuditLog:
    """``writer=False``: a reader that signs nothing (``verify``), so it neither holds the
    writers' lock nor keeps a starting server from seeing a stopped writer's tail as found."""
    from engine.audit.store import open_audit_store

    store = open_audit_store(settings)
    try:
        return AuditLog(store, settings, AuditKeys.load(settings, create=create_keys), segment=segment,
                        writer=writer)
    except BaseException:  # (a damaged segment: verify opens the log again without it)
        store.close()
        raise


def cmd_rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    pub = rotate_keys(settings)
    print(f"new audit signing key {pub.key_id} ({pub.name}); earlier public keys are kept")
    print(pub.pem, end="")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit.export import verify_export
    from engine.audit.verify import verify_online

    damaged = None
    try:  # an unreadable key file is "cannot verify" (2), never a traceback read as a found problem (1)
        pems = [Path(p).read_bytes() for p in args.public_key or []]
    except OSError as exc:
        print(f"huren audit verify: cannot read the public key: {exc}", file=sys.stderr)
        return 2
    if args.export:
        try:
            report = verify_export(Path(args.export), pems)
        except (ValueError, OSError) as exc:  # not an export at all, or not readable: say so, no traceback
            print(f"huren audit verify: cannot verify {args.export}: {exc}", file=sys.stderr)
            return 2
    else:
        from engine.audit.log import AuditLogDamaged
        from engine.audit.segment import SegmentDamaged

        damaged = None
        try:
            log = open_log(settings, writer=False)
        except (SegmentDamaged, AuditLogDamaged) as exc:  # say so, and verify what was stored before the segment
            damaged = str(exc)
            log = open_log(settings, segment=False, writer=False)
        try:
            keys = None
            if pems:
                try:
                    keys = AuditKeys.from_public_pems(log.keys.name, pems)
                except ValueError as exc:  # not a PEM public key: cannot verify against it
                    print(f"huren audit verify: cannot read the public key: {exc}", file=sys.stderr)
                    return 2
            report = verify_online(log, keys, check_nodes=not args.skip_nodes)
        finally:
            log.store.close()
        if damaged is not None:  # (the report covers the records stored before it)
            report.notes.insert(0, f"the audit segment file is damaged, its records are not verified: {damaged}")
    print(json.dumps(report.as_json(), indent=2, ensure_ascii=False) if args.json else report.text())
    if getattr(args, "require_signed", False) and report.unsigned:  # (a cron job that wants every record under a signature)
        return 1
    if not report.ok or damaged is not None:
        return 1
    # a log or export that agrees only with keys it carries or keeps beside it, or an export whose
    # header (its counts) no signature covers: not 0, which a script reads as "authentic and whole"
    return 0 if report.proven else SELF_KEYED_EXIT


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit.export import write_export

    log = open_log(settings)
    try:
        target: Any = open(args.output, "wb") if args.output != "-" else nullcontext(sys.stdout.buffer)  # noqa: SIM115
        with target as out:
            summary = write_export(log, out)
    finally:
        log.store.close()
    signed = "its header signed" if "note" in summary else (
        "its header NOT signed (no private key here, or the records are damaged): verify will say 'not proven "
        "complete' / 文件头未签名")
    print(f"exported {summary['written']} records, {summary['checkpoints']} checkpoints; {signed}", file=sys.stderr)
    return 0


def cmd_repair(args: argparse.Namespace, settings: Settings) -> int:
    from engine.audit.repair import repair

    report = repair(settings, Path(args.source) if args.source else None)
    print(report.text())
    return 0 if report.ok else 1


def cmd_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    """A signed checkpoint now. A store with no private audit key cannot sign one: refused in one line naming the
    fix, exit 2, as the other verbs' refusals are (a traceback had said the same thing under thirteen frames)."""
    log = open_log(settings)
    try:
        if not log.keys.can_sign:
            print("huren audit checkpoint: no audit signing key in this data dir: run `huren keys init` first",
                  file=sys.stderr)
            return 2
        cp = log.checkpoint(force=True)
    finally:
        log.store.close()
    print(cp.text if cp else "", end="")
    return 0


def add_audit_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="verify or export the signed audit log")
    verbs = audit.add_subparsers(dest="audit_verb", required=True)
    verify = verbs.add_parser(
        "verify", help="recompute the tree, check checkpoints, name the first bad record",
        description="Exit 0: verified against a trusted --public-key. 1: a problem found (named). 2: cannot verify "
        "(not an export, a malformed header, key, checkpoint, seal or first record line, an unreadable file or "
        "key). 3: consistent but not proven: no --public-key was given, so the signatures were checked against the "
        "keys the export carries or (online) those in data_dir/keys, which a forger who re-signed with a key of "
        "their own could have replaced; or an --export whose header (its counts) is not signed.")
    verify.add_argument("--export", help="verify this export file instead of the database (offline)")
    verify.add_argument("--public-key", action="append",
                        help="trusted public key PEM, kept apart from the log (repeat for rotated keys, oldest first, as GET "
                        "/audit/public-key lists them: an export header signed by an older one than the newest is noted; the "
                        "export's checkpoints, when they show a rotation, say which is newest, else this order); none "
                        "given: only the keys inside the export, or online those in data_dir/keys, are used and a "
                        "clean result exits 3, not 0")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--skip-nodes", action="store_true",
                        help="online: do not compare the stored tree nodes (about twice as fast)")
    verify.add_argument("--require-signed", action="store_true",
                        help="exit 1 also when records lie past the last signed checkpoint (no signature covers them)")
    verify.set_defaults(handler=cmd_verify)
    export = verbs.add_parser("export", help="write a self-contained JSON-lines export")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    export.set_defaults(handler=cmd_export)
    checkpoint = verbs.add_parser("checkpoint", help="sign a checkpoint of the current log now")
    checkpoint.set_defaults(handler=cmd_checkpoint)
    fix = verbs.add_parser("repair", help="put back the records of a damaged record file (checked against the "
                           "tree and the signed checkpoints), or name those no copy holds")
    fix.add_argument("--from", dest="source", help="a backup: its data directory, its audit.records directory "
                     "or the record file itself")
    fix.set_defaults(handler=cmd_repair)
    rotate = verbs.add_parser("rotate-key", help="new checkpoint signing key; old public keys stay valid")
    rotate.set_defaults(handler=cmd_rotate_key)
