"""``Engine``: the one object that wires huren's parts together from a ``Settings``.

No module-level state anywhere: the FastAPI app, the MLLP listener and the CLI all take an
``Engine``; tests build their own with a temporary data directory. Each part is a plain object
with the collaborators it needs passed in, so the wiring below is the whole dependency graph.
"""

from __future__ import annotations

from engine.auth.service import AuthService
from engine.identity.mpi import IdentityService
from engine.settings import Settings


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.auth = AuthService(settings, store=getattr(self, "store", None))
        # The MPI links Patients at ingest (a repository write hook) and gives residents their compartment.
        self.identity = IdentityService(self.auth.store, getattr(self, "repository", None))
        self.auth.attach_identity(self.identity)

    def close(self) -> None:
        """Release the database and any background work."""
        self.auth.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
