"""OAuth2 / SMART endpoints: token, authorize + resident login pages, introspection, revocation,
JWKS and ``/.well-known/smart-configuration``.

These endpoints speak OAuth2, not FHIR: form-encoded requests, JSON answers, errors as
``{"error", "error_description"}`` (RFC 6749 §5.2) and ``Cache-Control: no-store`` on everything
that carries a token. The login pages are server-rendered HTML (Jinja2), small enough for a phone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from engine.api.outcomes import error_response
from engine.api.ui_words import page_words
from engine.api.url_utf8 import unreadable_form
from engine.audit.note import note
from engine.auth import policy
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, get_caller
from engine.auth.errors import OAuthError
from engine.auth.resident import DEVICE_COOKIE, Choice, LoginError, RedirectError, ResidentAuth, SignedIn
from engine.auth.secret_file import SecretFileUnreadable
from engine.auth.service import ASSERTION_ALGS

router = APIRouter(tags=["auth"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "auth" / "templates"))

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CSP = "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
PAGE_HEADERS = {**NO_STORE, "X-Frame-Options": "DENY", "Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}

SCOPE_TEXT = {
    "patient/*.rs": "读取您的全部健康记录 · read all your health records",
    "patient/*.read": "读取您的全部健康记录 · read all your health records",
    "openid": "确认您的身份 · confirm who you are",
    "fhirUser": "确认您的身份 · confirm who you are",
    "offline_access": "保持登录 · stay signed in",
    "launch/patient": "选择您的档案 · open your record",
}


def oauth_json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def oauth_error(exc: OAuthError) -> JSONResponse:
    return oauth_json(exc.body(), exc.status, exc.headers)


async def _form(request: Request) -> dict[str, str]:
    """The OAuth endpoints' form (``/auth/token``, ``/auth/introspect``, ``/auth/revoke``): one value a name. A
    parameter that cannot be read as the UTF-8 text sent -- ``client_id=%FC``, ``%ZZ``, a raw Latin-1 byte -- is
    ``invalid_request`` naming it, by the rule of a URL's query and the FHIR ``_search`` form
    (``url_utf8.unreadable_parameter``): Starlette had read it as U+FFFD and answered ``invalid_client`` "unknown
    client or wrong credentials", a secret typed right in another encoding said to be wrong (http42)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    unreadable = await unreadable_form(request)
    if unreadable is not None:
        raise OAuthError("invalid_request", unreadable.diagnostics)
    form = await request.form()
    out: dict[str, str] = {}
    for key in form:
        values = form.getlist(key)
        if len(values) != 1:
            raise OAuthError("invalid_request", f"parameter {key!r} given more than once")
        if not isinstance(values[0], str):
            raise OAuthError("invalid_request", f"parameter {key!r} must be a plain value")
        out[key] = values[0]
    return out


def _auth(request: Request):  # noqa: ANN202
    return engine_of(request).auth


@router.post("/auth/token")
async def token(request: Request) -> Response:
    auth = _auth(request)
    form: dict[str, str] = {}
    client = None
    try:
        form = await _form(request)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant not in ("client_credentials", "authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        client = auth.authenticate_client(form, request.headers.getlist("authorization"))
        if grant == "client_credentials":
            body = auth.client_credentials(client, form.get("scope"))
        elif auth.resident is None:
            raise OAuthError("unsupported_grant_type", "resident sign-in is not configured on this server")
        else:
            body = auth.resident.token(grant, client, form)
    except OAuthError as exc:
        note(request, action="token", outcome="4",
             detail={"grant_type": form.get("grant_type"), "error": exc.error,
                     "client_id": client.client_id if client else form.get("client_id")})
        return oauth_error(exc)
    except SecretFileUnreadable as exc:
        # refused as the other failures are, and audited as they are (the review of labelsmend20)
        note(request, action="token", outcome="8",
             detail={"grant_type": form.get("grant_type"), "error": "temporarily_unavailable",
                     "client_id": client.client_id if client else form.get("client_id")})
        return error_response(exc)
    note(request, action="token", patient_ids=[body["patient"]] if "patient" in body else [],
         detail={"grant_type": grant, "client_id": client.client_id, "scope": body["scope"]})
    return oauth_json(body)


# ---- resident login ----------------------------------------------------------------------------


def _page(request: Request, name: str, status: int = 200, *, redirect_to: str | None = None,
          **ctx: Any) -> HTMLResponse:
    headers = PAGE_HEADERS
    if redirect_to:
        # CSP form-action also governs the redirect that follows a form post: the code page's form
        # ends in a 303 to the app, so the app's (registered, exact) redirect origin is allowed.
        parts = urlsplit(redirect_to)
        source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
        headers = {**PAGE_HEADERS, "Content-Security-Policy": f"{CSP} {source}"}
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=headers)


def _said(request: Request, exc: LoginError) -> tuple[str, str]:
    """A refused sign-in step as the resident reads it: [Chinese, English] from the page words'
    ``signin_errors`` (``mappings/insurance/words.yaml``, the site's overlay merged in), the
    engine's English sentence when the words have none for its code."""
    pair = (page_words(engine_of(request)).get("signin_errors") or {}).get(exc.code)
    if not pair:
        return "", str(exc)
    try:
        return pair[0].format(**exc.params), pair[1].format(**exc.params)
    except (KeyError, IndexError, ValueError):  # a site's words naming a value the refusal has not
        return "", str(exc)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/auth/authorize", response_class=HTMLResponse)
def authorize(request: Request) -> Response:
    resident = _auth(request).resident
    if resident is None:
        return _page(request, "error.html", 404, error="resident sign-in is not configured on this server")
    params = {k: v for k, v in request.query_params.items()}
    if any(len(request.query_params.getlist(k)) > 1 for k in params):
        return _page(request, "error.html", 400, error="invalid_request", detail="a parameter is repeated")
    try:
        pending = resident.start(params)
    except OAuthError as exc:  # the redirect URI cannot be trusted: show, never redirect
        return _page(request, "error.html", 400, error=exc.error, detail=exc.description)
    except RedirectError as exc:
        return RedirectResponse(exc.location, status_code=303, headers=NO_STORE)
    return _page(request, "login.html", request_id=pending["_id"], client_name=pending["client_name"],
                 action=str(request.url_for("authorize_login").path), error=None)


def _client_name(request: Request, req: dict[str, Any]) -> str:
    client = _auth(request).registry.get(req["client_id"])
    return (client.name or client.client_id) if client else req["client_id"]


# the sign-in steps' fields as the pages name them (``form-unreadable`` in the page words)
_FIELDS = {"national_id": "身份证号", "code": "验证码", "request_id": "登录请求编号", "choice": "选择"}


async def _step(request: Request, stage: str) -> tuple[ResidentAuth, FormData, str, dict[str, Any]] | Response:
    """The posted form of one sign-in step and the pending request it continues, or the error page
    when there is no such request at that stage (expired, replayed or forged ``request_id``)."""
    resident = _auth(request).resident
    unreadable = await unreadable_form(request)
    if unreadable is not None:  # (``password=%FC`` read as U+FFFD had been a wrong ID number or code: http42 LOW)
        field = (unreadable.expression or [""])[0]
        return _page(request, "error.html", 400, error=_said(request, LoginError(
            f"The sign-in form could not be read: its {field} field holds characters not in UTF-8.",
            "form-unreadable", field=_FIELDS.get(field, field))))
    form = await request.form()
    request_id = str(form.get("request_id", ""))
    try:
        return resident, form, request_id, resident.pending(request_id, stage)
    except LoginError as exc:
        return _page(request, "error.html", 400, error=_said(request, exc))


@router.post("/auth/authorize/login", name="authorize_login", response_class=HTMLResponse)
async def authorize_login(request: Request) -> Response:
    step = await _step(request, "login")
    if isinstance(step, Response):
        return step
    resident, form, request_id, req = step
    try:
        resident.login(request_id, str(form.get("national_id", "")), _client_ip(request),
                       request.cookies.get(DEVICE_COOKIE))
    except LoginError as exc:
        return _login_again(request, request_id, req, exc)
    return _code_page(request, request_id, req)


def _login_again(request: Request, request_id: str, req: dict[str, Any], exc: LoginError) -> HTMLResponse:
    """The ID-number form once more, saying why (a refused number, or a code step that ended)."""
    return _page(request, "login.html", 400, request_id=request_id, client_name=_client_name(request, req),
                 action=str(request.url_for("authorize_login").path), error=_said(request, exc))


def _code_page(request: Request, request_id: str, req: dict[str, Any], error: tuple[str, str] | None = None,
               status: int = 200) -> HTMLResponse:
    texts = list(dict.fromkeys(SCOPE_TEXT.get(s, s) for s in req["scope"]))
    return _page(request, "code.html", status, redirect_to=req["redirect_uri"], request_id=request_id, client_name=_client_name(request, req),
                 action=str(request.url_for("authorize_verify").path), scopes=texts, error=error)


@router.post("/auth/authorize/verify", name="authorize_verify", response_class=HTMLResponse)
async def authorize_verify(request: Request) -> Response:
    step = await _step(request, "code")
    if isinstance(step, Response):
        return step
    resident, form, request_id, req = step
    try:
        done = resident.verify(request_id, str(form.get("code", "")), _client_ip(request),
                               request.cookies.get(DEVICE_COOKIE))
    except LoginError as exc:
        if resident.requests.get(request_id) is None or resident.requests.get(request_id)["stage"] != "code":
            return _login_again(request, request_id, req, exc)
        note(request, action="login", outcome="4", detail={"client_id": req["client_id"], "reason": str(exc)})
        return _code_page(request, request_id, req, _said(request, exc), 400)
    note(request, action="login", detail={"client_id": req["client_id"]})
    if isinstance(done, Choice):
        return _choose_page(request, done.request_id, done.options, redirect_to=req["redirect_uri"])
    return _signed_in(request, done)


def _choose_page(request: Request, request_id: str, options: list, *, redirect_to: str,
                 error: tuple[str, str] | None = None,
                 status: int = 200) -> HTMLResponse:
    return _page(request, "choose.html", status, redirect_to=redirect_to, request_id=request_id, options=options,
                 action=str(request.url_for("authorize_choose").path), error=error)


@router.post("/auth/authorize/choose", name="authorize_choose", response_class=HTMLResponse)
async def authorize_choose(request: Request) -> Response:
    """A person who holds family access opens their own record or a family member's."""
    step = await _step(request, "choose")
    if isinstance(step, Response):
        return step
    resident, form, request_id, req = step
    choice = str(form.get("choice", ""))
    try:
        done = resident.choose(request_id, choice, request.cookies.get(DEVICE_COOKIE))
    except LoginError as exc:
        options = resident.choices(request_id)
        return _choose_page(request, request_id, options, redirect_to=req["redirect_uri"],
                            error=_said(request, exc), status=400)
    note(request, action="login", detail={"client_id": req["client_id"], "acting": choice != "self"})
    return _signed_in(request, done)


def _signed_in(request: Request, done: SignedIn) -> Response:
    response = RedirectResponse(done.location, status_code=303, headers=NO_STORE)
    # The device cookie lets this phone through even while others flood this ID number with code
    # requests; it is only ever sent back to the sign-in form posts.
    response.set_cookie(DEVICE_COOKIE, done.device, max_age=done.device_ttl, path="/auth/authorize",
                        secure=_auth(request).settings.public_base_url.startswith("https://")
                        or request.url.scheme == "https", httponly=True, samesite="strict")
    return response


# ---- introspection and revocation --------------------------------------------------------------


@router.post("/auth/introspect")
async def introspect(request: Request) -> JSONResponse:
    """RFC 7662. Confidential clients only; a patient app may only introspect its own tokens."""
    auth = _auth(request)
    try:
        form = await _form(request)
        client = auth.authenticate_client(form, request.headers.getlist("authorization"))
        if client.public:
            raise OAuthError("invalid_client", "public clients may not introspect tokens", status=401)
        value = form.get("token")
        if not value:
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as exc:
        return oauth_error(exc)
    info = auth.introspect(value)
    if info.get("active") and client.kind == "patient-app" and info.get("client_id") != client.client_id:
        info = {"active": False}
    return oauth_json(info)


@router.post("/auth/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009: always 200 for a valid client, whether or not the token meant anything."""
    auth = _auth(request)
    try:
        form = await _form(request)
        client = auth.authenticate_client(form, request.headers.getlist("authorization"))
        value = form.get("token")
        if not value:
            raise OAuthError("invalid_request", "token is required")
    except OAuthError as exc:
        return oauth_error(exc)
    auth.revoke(value, client, form.get("token_type_hint"))
    return Response(status_code=200, headers=NO_STORE)


# ---- OpenID Connect userinfo -------------------------------------------------------------------


@router.get("/auth/userinfo")
async def userinfo(request: Request, caller: Caller = Depends(get_caller)) -> JSONResponse:
    """OpenID Connect UserInfo for a resident's token with ``openid``: who signed in (``sub``, the
    person) and their FHIR record (``fhirUser``), the same claims as the ``id_token``; for a family
    member acting for someone, ``fhirUser`` is their RelatedPerson in that person's record and
    ``patient`` the record they act for."""
    if caller.kind != "patient" or not caller.has_scope("openid"):
        return oauth_json({"error": "insufficient_scope",
                           "error_description": "userinfo needs a resident's access token with the openid scope"},
                          403, {"WWW-Authenticate": 'Bearer realm="huren", error="insufficient_scope", scope="openid"'})
    why = _auth(request).resident.family.why_not(  # the Withheld compartment kept: it carries the reason
        {"consent": caller.consent, "acting": caller.acting, "person": caller.person},
        caller.patient_ids if caller.patient_ids is not None else frozenset()) if caller.acting else None
    if why is not None:
        return oauth_json({"error": "invalid_token", "error_description": policy.refusal(why),
                           "reason": policy.refusal_code(why)}, 401,  # as the FHIR API's issue.details
                          {"WWW-Authenticate": 'Bearer realm="huren", error="invalid_token"'})
    info = {"sub": caller.subject, "fhirUser": _auth(request).fhir_user({"patient": caller.patient, "acting": caller.acting})}
    if caller.acting:
        info["patient"] = caller.patient  # the record they act for (the RelatedPerson's patient)
    return oauth_json(info)


# ---- discovery ---------------------------------------------------------------------------------


@router.get("/auth/jwks")
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(_auth(request).jwks(), headers={"Cache-Control": "public, max-age=300"})


def smart_configuration(request: Request) -> JSONResponse:
    auth = _auth(request)
    base = auth.settings.public_base_url
    return JSONResponse({
        "issuer": auth.issuer,
        "jwks_uri": f"{base}/auth/jwks",
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": auth.token_endpoint,
        "introspection_endpoint": f"{base}/auth/introspect",
        "revocation_endpoint": f"{base}/auth/revoke",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs",
                             "patient/*.read", "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"],
        "capabilities": ["launch-standalone", "client-public", "client-confidential-symmetric",
                         "client-confidential-asymmetric", "context-standalone-patient", "permission-offline",
                         "permission-patient", "permission-v1", "permission-v2", "sso-openid-connect"],
    }, headers={"Cache-Control": "public, max-age=300"})


def openid_configuration(request: Request) -> JSONResponse:
    """OpenID Provider metadata: where an app finds the keys to check the ``id_token`` it got."""
    auth = _auth(request)
    base = auth.settings.public_base_url
    return JSONResponse({
        "issuer": auth.issuer,
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": auth.token_endpoint,
        "userinfo_endpoint": f"{base}/auth/userinfo",
        "jwks_uri": f"{base}/auth/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt",
                                                  "none"],
        "code_challenge_methods_supported": ["S256"],
    }, headers={"Cache-Control": "public, max-age=300"})


router.add_api_route("/.well-known/openid-configuration", openid_configuration, methods=["GET"])
router.add_api_route("/.well-known/smart-configuration", smart_configuration, methods=["GET"])
router.add_api_route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"])

