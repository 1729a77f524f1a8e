"""Staff sign-in for the pages: ``/ui/signin`` (password + TOTP), ``/ui/signout``, ``/ui/session``.

Server-rendered forms (no script needed to sign in). The sign-in form itself is protected against
login CSRF by a double-submit token (a cookie and a hidden field that must match); sign-out needs
the session's CSRF token. A successful sign-in sets the session cookie (HttpOnly, SameSite=Strict,
Secure when the public URL is https) and a long-lived device cookie (only sent to ``/ui/signin``)
that lets its owner past the per-account backoff a stranger may have caused.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from engine.api.ui_words import site_names
from engine.api.url_utf8 import unreadable_form
from engine.audit.note import note
from engine.auth.deps import engine_of
from engine.auth.policy import allowed, require_auditor, require_insurance_report, require_operator
from engine.auth.staff_oidc import OidcRefused
from engine.auth.staff_session import DEVICE_COOKIE, SESSION_COOKIE, SignInRefused, StaffSession, csrf_matches

SIGNIN_COOKIE = "huren_signin"  # the sign-in form's double-submit token
DEVICE_MAX_AGE = 365 * 86400
CSP = "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Security-Policy": CSP,
                "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
HOME = "/ui/duplicates"

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "auth" / "templates"))
router = APIRouter(include_in_schema=False)

ERRORS = {
    "credentials": ("登录名、密码或动态验证码不正确。请再试一次；验证码每 30 秒更新，请输入手机上当前显示的 6 位数字。",
                    "The sign-in name, password or code is not right. Try again; the code changes every "
                    "30 seconds, so type the 6 digits your phone shows now."),
    "throttled": ("尝试次数过多，请 {wait}后再试。这不是永久锁定，到时即可再次登录。",
                  "Too many attempts. Please wait {wait_en} and try again. Your account is not locked."),
    "form": ("登录页面已过期，请重新输入。", "The sign-in page had expired. Please enter your details again."),
    # a field not in UTF-8 (``url_utf8.unreadable_form``): not a wrong password, and not counted as one
    "unreadable": ("登录表单无法读取：“{field}”一栏含有不是 UTF-8 编码的字符。请在本页重新输入后再登录。",
                   "The sign-in form could not be read: the {field_en} field holds characters not in UTF-8. "
                   "Please type your details again on this page."),
    "provider": ("暂时无法连接医保局统一身份认证，请稍后再试，或使用本系统账号登录。",
                 "The bureau's sign-in service cannot be reached just now. Try again later, or use your huren account."),
    "oidc-state": ("这次统一身份认证登录已失效（超时、重复或来自其他浏览器），请重新点击登录。",
                   "That sign-in through the bureau had expired or came back to another browser. Please start again."),
    "oidc-token": ("统一身份认证返回的身份信息无法核验，已拒绝登录。请联系系统管理员。",
                   "The identity sent back by the bureau's sign-in could not be verified, so you are not signed in. "
                   "Please tell your administrator."),
    "oidc-role": ("您的统一身份认证账号没有本系统的角色（审核员、运维人员或临床医生）。请联系系统管理员。",
                  "Your bureau account has no role in huren (auditor, operator or clinician). Ask your administrator."),
    "out": ("您已退出登录。下次使用请重新登录。", "You are signed out."),
    "expired": ("登录已过期（长时间未操作，或已在别处退出），请重新登录，登录后回到原来的页面。",
                "Your sign-in has expired. Sign in again to go back to the page you were on."),
}


def _wait_words(seconds: int) -> tuple[str, str]:
    """A wait as a person reads it: under a minute in seconds, else in whole minutes ROUNDED UP (an
    address's limit waits up to 15 minutes, which had read "请 901 秒后再试"; ``Retry-After`` keeps the
    seconds). Up, never to the nearest: 61-89 s had read "1 分钟", and a retry after that minute was
    refused again -- the page must name a time at which the retry is let through."""
    if seconds < 60:
        return f"{seconds} 秒", f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} 分钟", f"{minutes} minute{'s' if minutes != 1 else ''}"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or engine_of(request).settings.public_base_url.startswith("https:")


# the pages served outside /ui/ (an API address a browser is answered as a page: ``ui_fidelity``)
_OTHER_PAGES = ("/admin/fidelity",)


# what a return place keeps unencoded: the set Starlette's ``RedirectResponse`` keeps in a ``Location``
_URL_SAFE = ":/%#?=@[]!$&'()*+,;"


def _next(value: str | None) -> str:
    """Only this server's own pages: an open redirect would make the sign-in page a phishing aid. The one
    check of a return place, wherever it comes from (``next`` of the form, of the OIDC start, the place
    the OIDC sign-in stored) and wherever it goes (a ``Location``, the OIDC page's ``Refresh`` header, a
    form field, a link).

    It comes back percent-encoded as a ``Location`` is (RFC 3986: CR, LF, tabs, spaces, non-ASCII): the
    ``Refresh`` header took it as it was, so a CR/LF in it went into the header and a Chinese filter
    (``?institution=阜宁``) could not be written at all (a 500: headers are Latin-1) -- review rv38g. A dot
    segment (``/ui/../fhir``, ``/ui/%2e%2e/admin``) is refused too: a browser resolves it to a page outside
    the ones named here."""
    if not value or value.startswith("//") or "\\" in value:
        return HOME
    place = quote(value, safe=_URL_SAFE)
    path = place.split("?", 1)[0].split("#", 1)[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        return HOME
    if place.startswith("/ui/") or any(place == p or place.startswith(p + "?") for p in _OTHER_PAGES):
        return place
    return HOME


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_session(request: Request) -> StaffSession | None:
    return engine_of(request).staff.session(request.cookies.get(SESSION_COOKIE))


def signin_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/signin?next={quote(path, safe='/')}", status_code=303,
                            headers={"Cache-Control": "no-store"})


def _form(request: Request, *, status: int = 200, error: str | None = None, wait: int | None = None,
          name: str = "", next_path: str = HOME, notice: str | None = None, field: str = "") -> HTMLResponse:
    token = request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)
    oidc = engine_of(request).staff.oidc
    ctx: dict[str, Any] = {"csrf": token, "name": name, "next": next_path, "error": None, "notice": None,
                           "oidc": (oidc.config.label_zh, oidc.config.label_en) if oidc else None,
                           "oidc_href": "/ui/signin/oidc?next=" + quote(next_path, safe="/")}
    if error:
        zh, en = ERRORS[error]
        wait_zh, wait_en = _wait_words(int(wait or 0))
        zh_field, en_field = _FIELDS.get(field, (field, field))
        ctx["error"] = (zh.format(wait=wait_zh, field=zh_field), en.format(wait_en=wait_en, field_en=en_field))
    if notice:
        ctx["notice"] = ERRORS[notice]
    headers = dict(PAGE_HEADERS)
    if wait:
        headers["Retry-After"] = str(wait)
    resp = templates.TemplateResponse(request, "staff_signin.html", ctx, status_code=status, headers=headers)
    resp.set_cookie(SIGNIN_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                    path="/ui/signin", max_age=3600)
    return resp


@router.get("/ui/signin")
def signin_page(request: Request, next: str | None = None, out: str | None = None,
                expired: str | None = None) -> Response:
    """``out`` after signing out, ``expired`` when a page found its session gone (idle, or signed out
    in another tab): each is told so in plain words, not shown a bare form."""
    if current_session(request) is not None:
        return RedirectResponse(_next(next), status_code=303)
    return _form(request, next_path=_next(next), notice="expired" if expired else "out" if out else None)


# the sign-in form's fields as the page names them (a field named otherwise is shown as sent, escaped by the page)
_FIELDS = {"name": ("登录名", "sign-in name"), "password": ("密码", "password"), "code": ("动态验证码", "code"),
           "csrf": ("页面校验码", "page check"), "next": ("返回页面", "return page")}


@router.post("/ui/signin")
async def signin(request: Request) -> Response:
    unreadable = await unreadable_form(request)
    if unreadable is not None:  # no credential was checked: neither audited as a refused sign-in nor throttled
        return _form(request, status=400, error="unreadable", field=(unreadable.expression or [""])[0])
    form = await request.form()
    name, next_path = str(form.get("name") or "").strip(), _next(str(form.get("next") or ""))
    cookie, field = request.cookies.get(SIGNIN_COOKIE) or "", str(form.get("csrf") or "")
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()):
        return _form(request, status=403, error="form", name=name, next_path=next_path)
    staff = engine_of(request).staff
    try:
        done = staff.sign_in(name, str(form.get("password") or ""), str(form.get("code") or ""),
                             address=_client(request), device=request.cookies.get(DEVICE_COOKIE))
    except SignInRefused as exc:
        note(request, action="login", outcome="4", detail={"staff": name[:40], "refused": exc.reason})
        if exc.reason == "throttled":
            return _form(request, status=429, error="throttled", wait=exc.retry_after, name=name,
                         next_path=next_path)
        return _form(request, status=401, error="credentials", name=name, next_path=next_path)
    caller = done.session.caller
    request.state.caller = caller  # the audit trail names who signed in
    note(request, action="login", detail={"staff": caller.subject, "role": caller.role,
                                          "institution": caller.institution})
    resp = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    secure = _secure(request)
    resp.set_cookie(SESSION_COOKIE, done.token, httponly=True, samesite="strict", secure=secure, path="/",
                    max_age=int(staff.max_age))
    resp.set_cookie(DEVICE_COOKIE, done.device, httponly=True, samesite="strict", secure=secure,
                    path="/ui/signin", max_age=DEVICE_MAX_AGE)
    resp.delete_cookie(SIGNIN_COOKIE, path="/ui/signin", secure=secure, httponly=True, samesite="strict")
    return resp


@router.post("/ui/signout")
async def signout(request: Request) -> Response:
    session = current_session(request)
    form = await request.form()
    if session is not None:
        if not csrf_matches(session, str(form.get("csrf") or "")):
            # Not signed out: the form came from a page opened before a newer sign-in (another tab),
            # or not from this server's page at all. A person had been shown raw JSON in English;
            # now a page says so in words and offers the sign-out again with this session's token
            # (only this browser, holding the cookie, gets that page; it may not be framed).
            return templates.TemplateResponse(request, "staff_signout_stale.html",
                                              {"csrf": session.csrf, "back": HOME}, status_code=403,
                                              headers=PAGE_HEADERS)
        request.state.caller = session.caller
        engine_of(request).staff.sign_out(request.cookies.get(SESSION_COOKIE))
        note(request, action="logout", detail={"staff": session.person.name})
    resp = RedirectResponse("/ui/signin?out=1", status_code=303, headers={"Cache-Control": "no-store"})
    resp.delete_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict")
    return resp


@router.get("/ui/session")
def session_info(request: Request) -> Response:
    """For the page's script: who is signed in, the CSRF token to echo, and when the session ends."""
    session = current_session(request)
    if session is None:
        return JSONResponse({"error": "not signed in"}, status_code=401, headers={"Cache-Control": "no-store"})
    a, r = session.person, session.role
    caller = session.caller
    return JSONResponse({"name": a.name, "display": a.display or a.name, "role": a.role, "role_zh": r.label_zh,
                         "role_en": r.label_en, "institution": a.institution, "remit": a.remit or None,
                         "csrf": session.csrf, "expires": int(session.expires),
                         **site_names(engine_of(request)),
                         # what the pages offer is what the access policy allows (the API still decides)
                         "can": {"duplicates": allowed(require_auditor, caller),
                                 "review": allowed(require_auditor, caller, review=True),
                                 "insurance": allowed(require_insurance_report, caller, "ChargeItem", "Encounter"),
                                 "quarantine": allowed(require_operator, caller, "read"),
                                 # /admin/fidelity's page: the route's own check (admin._fidelity_reader)
                                 "fidelity": allowed(require_operator, caller, "read"),
                                 "replay": allowed(require_operator, caller, "replay")}},
                        headers={"Cache-Control": "no-store"})


OIDC_COOKIE = "huren_oidc"  # binds the provider's answer to the browser that asked (SameSite=Lax: it
# comes back as a cross-site top-level navigation, which a Strict cookie would not accompany)


@router.get("/ui/signin/oidc")
def oidc_start(request: Request, next: str | None = None) -> Response:
    oidc = engine_of(request).staff.oidc
    if oidc is None:
        return _form(request, status=404, next_path=_next(next))
    try:
        url, binding = oidc.start(_next(next))
    except (OidcRefused, OSError, ValueError, KeyError):
        return _form(request, status=502, error="provider", next_path=_next(next))
    resp = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    resp.set_cookie(OIDC_COOKIE, binding, httponly=True, samesite="lax", secure=_secure(request),
                    path="/ui/signin/oidc", max_age=600)
    return resp


@router.get("/ui/signin/oidc/callback")
def oidc_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    staff = engine_of(request).staff
    if staff.oidc is None:
        return _form(request, status=404)
    try:
        if error:
            raise OidcRefused("oidc-state", f"the provider answered {error}")
        person, stored = staff.oidc.finish(state=state, code=code, binding=request.cookies.get(OIDC_COOKIE))
        next_path = _next(stored)  # checked again as it leaves: it goes into a header (``Refresh``)
        role = staff.roles[person.role]
    except OidcRefused as exc:
        note(request, action="login", outcome="4", detail={"oidc": staff.oidc.config.issuer, "refused": str(exc)[:200]})
        status = 502 if exc.reason == "provider" else 403
        resp = _form(request, status=status, error=exc.reason)
        resp.delete_cookie(OIDC_COOKIE, path="/ui/signin/oidc")
        return resp
    token, session = staff.open_session(person, role, address=_client(request), issuer=staff.oidc.config.issuer)
    request.state.caller = session.caller
    note(request, action="login", detail={"staff": person.name, "role": person.role, "institution": person.institution,
                                          "oidc": staff.oidc.config.issuer})
    # A page, not a redirect: the browser arrived here from the provider's site, and a redirect would
    # keep that cross-site context, so the SameSite=Strict session cookie would not go with it.
    resp = templates.TemplateResponse(request, "staff_continue.html", {"next": next_path},
                                      headers={**PAGE_HEADERS, "Refresh": f"0;url={next_path}"})
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/",
                    max_age=int(staff.max_age))
    resp.delete_cookie(OIDC_COOKIE, path="/ui/signin/oidc")
    return resp
