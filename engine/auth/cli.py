"""CLI verbs of the auth part: ``huren client add|list|remove`` and ``huren keys init``."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from engine.auth import keys
from engine.auth.clients import KINDS, ClientRegistry
from engine.auth.scopes import ScopeError
from engine.settings import Settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    client = sub.add_parser("client", help="register OAuth clients (hospital systems, auditors, resident apps)")
    csub = client.add_subparsers(dest="client_verb", required=True)
    add = csub.add_parser("add", help="register a client; prints its secret once")
    add.add_argument("client_id")
    add.add_argument("--scope", action="append", required=True,
                     help='SMART scopes, e.g. "system/*.cruds" (repeat, or space-separated)')
    add.add_argument("--kind", choices=KINDS, default="system")
    add.add_argument("--redirect-uri", action="append", default=[], help="exact redirect URI (patient apps)")
    add.add_argument("--public", action="store_true", help="public client (no secret; PKCE only)")
    add.add_argument("--jwks", type=Path, help="JWKS file of the client's public keys (private_key_jwt)")
    add.add_argument("--name", default="")
    add.add_argument("--institution", metavar="CODE",
                     help="the institution whose system this is (kind system): bound, it reads no record labelled "
                          "R or V -- huren cannot tell which records are its own -- so bind the systems of "
                          "the hospitals that do not send them (机构绑定：不可读取 R/V 密级记录)")
    add.set_defaults(handler=client_add)
    lst = csub.add_parser("list", help="list registered clients")
    lst.set_defaults(handler=client_list)
    rm = csub.add_parser("remove", help="remove a client")
    rm.add_argument("client_id")
    rm.set_defaults(handler=client_remove)

    k = sub.add_parser("keys", help="signing keys")
    ksub = k.add_subparsers(dest="keys_verb", required=True)
    init = ksub.add_parser("init", help="create the token (and audit) signing keys if missing")
    init.set_defaults(handler=keys_init)


def client_add(args: argparse.Namespace, settings: Settings) -> int:
    scopes = [s for chunk in args.scope for s in chunk.split()]
    jwks = json.loads(args.jwks.read_text("utf-8")) if args.jwks else None
    try:
        secret = ClientRegistry(settings.data_dir).add(
            args.client_id, scopes=scopes, kind=args.kind, redirect_uris=args.redirect_uri,
            jwks=jwks, public=args.public, name=args.name, institution=args.institution)
    except (ValueError, ScopeError) as exc:
        print(f"error: {exc}")
        return 2
    bound = f"; institution {args.institution}: reads no R/V record" if args.institution else ""
    print(f"client {args.client_id} registered ({args.kind}; scopes: {' '.join(scopes)}{bound})")
    if secret:
        print(f"client secret (shown once, store it now): {secret}")
    return 0


def client_list(args: argparse.Namespace, settings: Settings) -> int:
    for c in ClientRegistry(settings.data_dir).all():
        auth = "public" if c.public else ("private_key_jwt" if c.jwks else "secret")
        print(f"{c.client_id}\t{c.kind}\t{auth}\t{' '.join(c.scopes)}\t{' '.join(c.redirect_uris)}"
              + (f"\tinstitution={c.institution}" if c.institution else ""))
    return 0


def client_remove(args: argparse.Namespace, settings: Settings) -> int:
    if ClientRegistry(settings.data_dir).remove(args.client_id):
        print(f"client {args.client_id} removed")
        return 0
    print(f"error: no client {args.client_id}")
    return 1


# Hook for the audit part: if ``engine.audit.keys.init_keys(settings) -> list[Path]`` exists,
# ``keys init`` also creates the audit checkpoint keys (files ``data_dir/keys/audit-*``).
AUDIT_KEYS_HOOK = ("engine.audit.keys", "init_keys")


def keys_init(args: argparse.Namespace, settings: Settings) -> int:
    key, created = keys.load_or_create(settings.data_dir)
    print(f"token signing key {key.path} ({'created' if created else 'exists'}; kid {key.kid})")
    idkey, created = keys.load_or_create_id_token_key(settings.data_dir)
    print(f"id_token signing key {idkey.path} ({'created' if created else 'exists'}; kid {idkey.kid})")
    from engine.identity.mpi import KEY_FILE, load_or_create_key

    existed = (keys.key_dir(settings.data_dir) / KEY_FILE).exists()
    load_or_create_key(settings.data_dir)
    print(f"identity index key {keys.key_dir(settings.data_dir) / KEY_FILE} ({'exists' if existed else 'created'})")
    module_name, fn_name = AUDIT_KEYS_HOOK
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        module = None
    init_audit = getattr(module, fn_name, None)
    if init_audit is not None:
        for path in init_audit(settings) or []:
            print(f"audit key {path}")
    return 0
