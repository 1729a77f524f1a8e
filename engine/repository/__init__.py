"""huren's shared FHIR repository and the storage backends under it.

``open_store(settings)`` picks the backend: MongoDB when ``settings.mongodb_uri`` is set
(``mongomock://`` selects the in-process mongomock, for tests), otherwise the embedded SQLite
file ``settings.sqlite_path``.
"""

from __future__ import annotations

from engine.repository.port import Collection, DuplicateKey, Store
from engine.settings import Settings

__all__ = ["Collection", "DuplicateKey", "Store", "open_store"]


def open_store(settings: Settings) -> Store:
    uri = settings.mongodb_uri
    if uri:
        from engine.repository.mongo_store import MongoStore

        if uri.startswith("mongomock://"):
            import mongomock

            return MongoStore(mongomock.MongoClient(), settings.mongodb_db)
        import pymongo

        client = pymongo.MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=10000)
        return MongoStore(client, settings.mongodb_db)
    from engine.repository.sqlite_store import SqliteStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStore(settings.sqlite_path)
