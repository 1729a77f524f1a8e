"""huren's engine package."""

# The compiled hot path (engine/accel.py): its import finder goes first, before any listed module loads.
from engine import accel as _accel

_accel.install()
