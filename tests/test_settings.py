from pathlib import Path

from engine.settings import Settings


def test_env_names_are_the_stable_ones(tmp_path: Path) -> None:
    s = Settings.from_env({
        "HUREN_DATA_DIR": str(tmp_path), "HUREN_HTTP_PORT": "9090", "HUREN_MLLP_PORT": "2600",
        "HUREN_MONGODB_URI": "mongodb://x", "HUREN_SITE": "/site", "HUREN_BASE_URL": "https://h.example/",
    })
    assert s.data_dir == tmp_path and s.http_port == 9090 and s.mllp_port == 2600
    assert s.mongodb_uri == "mongodb://x" and s.site == Path("/site")
    assert s.fhir_base_url == "https://h.example/fhir"


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.data_dir == Path("./var") and s.http_port == 8080 and s.mllp_port == 2575
    assert s.mongodb_uri is None and s.fhir_base_url == "http://127.0.0.1:8080/fhir"
