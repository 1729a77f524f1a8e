"""``Engine``: the one object that wires huren's parts together from a ``Settings``.

No module-level state anywhere: the FastAPI app, the MLLP listener and the CLI all take an
``Engine``; tests build their own with a temporary data directory. Each part is a plain object
with the collaborators it needs passed in, so the wiring below is the whole dependency graph.
"""

from __future__ import annotations

from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.auth.service import AuthService
from engine.repository import open_store
from engine.repository.fhir import FhirRepository
from engine.settings import Settings


def _validator() -> object | None:
    """The conformance validator when that package provides it (it joins main separately)."""
    try:
        from conformance.validate import Validator  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Validator()


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(settings)
        self.repository = FhirRepository(self.store, validator=_validator(), base_url=settings.fhir_base_url)  # type: ignore[arg-type]
        self.auth = AuthService(settings, store=getattr(self, "store", None))
        # audit trail: every HTTP interaction (engine.audit.middleware) and non-HTTP event is appended
        # ... and each event is also stored as a FHIR AuditEvent so residents can search their own
        self.audit = AuditLog(self.store, settings, AuditKeys.load(settings), repository=self.repository)
        self.audit.start()

    def close(self) -> None:
        """Release the database and any background work."""
        self.audit.close()
        self.auth.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
