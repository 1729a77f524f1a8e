"""Search parameter data extracted from the official R4 definitions (see ``extract.py``)."""
