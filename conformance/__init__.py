"""Conformance: R4 validation and the CapabilityStatement."""

# installs the compiled hot path's import finder (engine/accel.py) before any listed module loads
import engine  # noqa: F401
