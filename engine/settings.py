"""Configuration: the stable ``HUREN_*`` names of DESIGN.md §3a, read once into a ``Settings`` object.

Nothing reads the environment after start-up; tests build their own ``Settings`` (usually with a
temporary ``data_dir``) and pass it to ``Engine``. An optional TOML file (``HUREN_CONFIG``) can hold
the same keys in lower case without the prefix; environment variables win over the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./var")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    mongodb_uri: str | None = None
    mongodb_db: str = "huren"
    site: Path | None = None
    base_url: str | None = None
    # MLLP limits and TLS
    mllp_max_message_bytes: int = 4 * 1024 * 1024
    mllp_idle_timeout: float = 300.0
    mllp_tls_cert: Path | None = None
    mllp_tls_key: Path | None = None
    mllp_tls_client_ca: Path | None = None
    # MSH-11 processing IDs (HL7 table 0103) this node accepts, comma-separated: "P" a production node,
    # "T" a training node; any other is refused AR 202 and kept for the operator, never stored as clinical
    # data (``adapters.hl7v2.processing``; a sender that marks production T is declared in senders.yaml)
    processing_ids: str = "P"
    # HTTP request limits: a larger body is refused with 413, a deeper JSON body with 400. R4 caps a
    # string at 1 MiB; 8 MiB leaves room for transaction Bundles. No FHIR resource nests near 100
    # levels, and the JSON serialiser gives up around 255.
    max_request_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 100
    # browser SMART apps: origins allowed on /fhir and /auth/token besides the registered apps' redirect
    # URI origins (comma-separated, e.g. "https://app.example,https://other.example")
    cors_origins: str | None = None
    # tokens
    token_ttl_seconds: int = 3600
    # the resident page's own (built-in client huren-me): its sign-out revokes by a request it does
    # not wait for, and one that never arrives leaves the token live this long: counted from sign-in,
    # an absolute limit (no refresh token, not renewed by use), not an idle one like the staff
    # sessions' below; the resident signs in again; other apps keep token_ttl_seconds
    me_token_ttl_seconds: int = 900
    # staff sign-in sessions for the pages: idle and absolute limits
    staff_session_idle_seconds: int = 900
    staff_session_max_seconds: int = 28800
    # audit checkpoints: every N records or T seconds; and the seal (HUREN_AUDIT_SEAL_SECONDS, 0: none),
    # the whole log signed in place each S seconds, so the records no signature covers are at most
    # that many seconds' worth (engine.audit.log.AuditLog.seal)
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 60.0
    audit_seal_seconds: float = 1.0
    # a sender refused this many times for naming another member institution's record numbers for other persons
    # (AE 205, per member) raises an alert, again at each multiple: logged, audited (member-number-refused), shown
    # on /admin/fidelity (``engine.ingest.Ingestor._member_refused``; the README's priv36); 0: counted, no alert
    member_refusal_alert: int = 20
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Settings read are settings checked: ``processing_ids`` written as a TOML list (``["P", "T"]``) is
        read as the list it is, and a value outside HL7 table 0103 stops the start here, before the engine
        writes anything in the data dir (it stopped at the ingestor, the last step, leaving a half-made node
        and a running audit thread; rvhl7mode29 findings 5 and 6)."""
        from adapters.hl7v2.processing import parse_ids

        if not isinstance(self.processing_ids, str):
            object.__setattr__(self, "processing_ids", ",".join(map(str, self.processing_ids)))
        object.__setattr__(self, "_processing_ids", parse_ids(self.processing_ids))

    @property
    def fhir_base_url(self) -> str:
        """Public FHIR base URL, used in ``fullUrl``, paging links, ``Location`` and token ``aud``."""
        return self.public_base_url + "/fhir"

    @property
    def public_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def accepted_processing_ids(self) -> frozenset[str]:
        """``processing_ids`` read (``processing.parse_ids``: a value outside table 0103 stops the start)."""
        return self._processing_ids  # type: ignore[attr-defined, no-any-return]  (read in ``__post_init__``)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "huren.sqlite3"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        config_file = env.get("HUREN_CONFIG")
        if config_file:
            with open(config_file, "rb") as fh:
                values.update(tomllib.load(fh))
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = "HUREN_" + f.name.upper()
            if key in env and env[key] != "":
                values[f.name] = env[key]
        return cls(**{k: _coerce(cls, k, v) for k, v in values.items()})


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    default = {f.name: f for f in fields(cls)}.get(name)
    if default is None:
        raise ValueError(f"unknown setting {name!r}")
    kind = default.type
    if value is None:
        return None
    if "Path" in str(kind):
        return Path(value)
    if "int" in str(kind) and not isinstance(value, int):
        return int(value)
    if "float" in str(kind) and not isinstance(value, float):
        return float(value)
    return value
