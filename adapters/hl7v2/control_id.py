"""The control id of a message that came without one (MSH-10 empty), taken from its content.

MSH-10 serves two purposes: the sender matches the ACK to its message (MSA-2 echoes it) and the
receiver recognises a resend (huren's idempotency key is MSH-4 + MSH-10). A sender that leaves
it empty still gets its answers in order on the same MLLP connection, so the first purpose is
served by the connection; the second is served by the content itself: an identical resend has
the same bytes, so a digest of the message text recognises it exactly as MSH-10 would, and a
message that differs in any byte is another message (resource ids are deterministic, so even a
regenerated copy files the same resources again rather than new ones). The header reader and
the parser both call this function on the same text, so the stored message and its converted
resources carry the same id.
"""

from __future__ import annotations

import hashlib

# marks an id huren derived, so an operator reading the message store never takes it for the sender's
PREFIX = "sha256-"
HEX_DIGITS = 20  # 80 bits: no collision among any one sender's messages in practice


def content_control_id(text: str) -> str:
    """``sha256-<20 hex>`` over the message text (from MSH on, as decoded for parsing)."""
    return PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HEX_DIGITS]
