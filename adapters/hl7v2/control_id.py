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


def keyed_control_id(field: str) -> str:
    """MSH-10 as the message store keys a message (``engine.messages``: its document's ``control_id``,
    the idempotency key) and as a Provenance names the message it was made from: the whole field as
    sent -- escapes and any component separator kept, ST has no components -- trimmed; "" when the
    sender left it empty (then ``content_control_id``). The one reading: the Provenance had named
    the parser's (first component, unescaped, untrimmed), so a registration sent with MSH-10 ``A1 ``,
    ``A\\T\\1`` or ``A1^X`` found no message document and "could not be told", and the HIS's own A08
    correcting its record was refused (rvregapp33 finding 7). Resource ids keyed by the message
    (``Context.message_key``) keep the parser's reading: they are stored and named already."""
    return field.strip()


def content_control_id(text: str) -> str:
    """``sha256-<20 hex>`` over the message text (from MSH on, as decoded for parsing)."""
    return PREFIX + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HEX_DIGITS]
