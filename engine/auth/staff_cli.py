"""``huren staff add|list|remove|password|totp``: named staff accounts for the signed-in pages.

``add`` asks for the password (twice) on the terminal, or reads one line from standard input with
``--password-stdin`` (scripts); it prints the TOTP enrolment (otpauth:// URI and secret) once, as
products do: the server cannot show it again, only replace it (``totp``).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from engine.auth.staff import Enrolment, StaffDirectory, load_roles
from engine.settings import Settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    staff = sub.add_parser("staff", help="named staff accounts (auditor, operator, clinician) for the pages")
    ssub = staff.add_subparsers(dest="staff_verb", required=True)
    add = ssub.add_parser("add", help="create an account; prints the second-factor enrolment once")
    add.add_argument("name", help="sign-in name (lower case, e.g. wang.li)")
    add.add_argument("--role", required=True, help="auditor, operator or clinician (mappings/staff/roles.yaml)")
    add.add_argument("--institution", required=True, help="institution code (e.g. the bureau's or a hospital's)")
    add.add_argument("--display", default="", help="the person's name as shown (e.g. 王丽)")
    add.add_argument("--remit", default="", help="bind an auditor to one institution, medical community or pooling "
                                                 "region (its code); default: the whole site")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(handler=staff_add)
    lst = ssub.add_parser("list", help="list accounts")
    lst.set_defaults(handler=staff_list)
    rm = ssub.add_parser("remove", help="remove an account (its sessions end at their next request)")
    rm.add_argument("name")
    rm.set_defaults(handler=staff_remove)
    pw = ssub.add_parser("password", help="set a new password")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(handler=staff_password)
    totp = ssub.add_parser("totp", help="re-enrol the second factor (lost phone); prints it once")
    totp.add_argument("name")
    totp.set_defaults(handler=staff_totp)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _print_enrolment(e: Enrolment) -> None:
    print("second factor (shown once; scan or type it into an authenticator app now):")
    print(f"  {e.uri}")
    print(f"  secret: {e.secret}")


def staff_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.remit:
        from engine.insurance.remit import kind_of
        from mappings.site import Site

        if kind_of(args.remit, Site.load(settings), settings.site) is None:
            print(f"error: remit {args.remit!r} is no institution, community or pooling region of this site")
            return 2
    try:
        enrolment = StaffDirectory(settings.data_dir).add(
            args.name, role=args.role, institution=args.institution, password=_password(args),
            display=args.display, roles=load_roles(settings), remit=args.remit)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    a = enrolment.account
    print(f"staff {a.name} added ({a.role}, {a.institution}{', ' + a.display if a.display else ''}"
          f"{', remit ' + a.remit if a.remit else ''})")
    _print_enrolment(enrolment)
    return 0


def staff_list(args: argparse.Namespace, settings: Settings) -> int:
    for a in StaffDirectory(settings.data_dir).all():
        print(f"{a.name}\t{a.role}\t{a.institution}\t{a.display}\t{a.remit or '*'}")
    return 0


def staff_remove(args: argparse.Namespace, settings: Settings) -> int:
    if StaffDirectory(settings.data_dir).remove(args.name):
        print(f"staff {args.name} removed")
        return 0
    print(f"error: no staff account {args.name}")
    return 1


def staff_password(args: argparse.Namespace, settings: Settings) -> int:
    try:
        StaffDirectory(settings.data_dir).set_password(args.name, _password(args))
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    print(f"password of {args.name} changed")
    return 0


def staff_totp(args: argparse.Namespace, settings: Settings) -> int:
    try:
        enrolment = StaffDirectory(settings.data_dir).new_totp(args.name)
    except ValueError as exc:
        print(f"error: {exc}")
        return 1
    _print_enrolment(enrolment)
    return 0
