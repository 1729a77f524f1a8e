"""Adapters: HL7 v2 parsing, conversion to FHIR, listeners."""

# installs the compiled hot path's import finder (engine/accel.py) before any listed module loads
import engine  # noqa: F401
