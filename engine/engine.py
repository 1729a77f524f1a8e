"""``Engine``: the one object that wires huren's parts together from a ``Settings``.

No module-level state anywhere: the FastAPI app, the MLLP listener and the CLI all take an
``Engine``; tests build their own with a temporary data directory. Each part is a plain object
with the collaborators it needs passed in, so the wiring below is the whole dependency graph.
"""

from __future__ import annotations

from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.auth.service import AuthService
from engine.identity.mpi import IdentityService
from engine.identity.mpi import load_or_create_key as load_or_create_identity_key
from engine.repository import open_store
from engine.settings import Settings


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(settings)
        self.auth = AuthService(settings, store=self.store)
        # The MPI links Patients at ingest (a repository write hook) and gives residents their compartment.
        self.identity = IdentityService(self.store, getattr(self, "repository", None),
                                        key=load_or_create_identity_key(settings.data_dir))
        self.auth.attach_identity(self.identity)
        # audit trail: every HTTP interaction (engine.audit.middleware) and non-HTTP event is appended
        self.audit = AuditLog(self.store, settings, AuditKeys.load(settings))
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
