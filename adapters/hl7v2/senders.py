"""Which member institution sent a message, when MSH-4 does not say it in the institution's code.

Senders write MSH-4 their own way (a full name, an old code, nothing at all). The site says, as
data (``mappings/hl7v2/senders.yaml``), how those map to an institution: MSH-4.1 aliases, the
sending application (MSH-3.1) when MSH-4 is empty, and the listener a message came in on (the TLS
client certificate's CN, or the listening port) when neither names one. A registered MSH-4.1 is
always taken as sent. The answer is a pure function of the message, the peer string the listener
recorded with it and the site, so a replay of a stored message resolves the same way.
"""

from __future__ import annotations

import re
from typing import Any

# ``adapters.listeners.mllp._peer_name``: ``<host>:<port>[ CN=<cn>][ port=<listening port>]``, the CN written raw
# (the certificate's commonName value as ``ssl`` decodes it: not an RFC 4514 DN, so nothing in it is escaped and it
# may hold spaces): the CN is everything after `` CN=`` up to the trailing `` port=<digits>`` the listener appends.
_CN = re.compile(r" CN=(.+?)(?: port=\d+)?$")
_PORT = re.compile(r"\bport=(\d+)$")  # the last: a CN may hold "port=" itself


def peer_cn(peer: str) -> str:
    """The TLS client certificate's whole CN in the peer text the MLLP listener recorded ("" when it names none):
    the one reading of it, for the site's sender table (``tls:<CN>``) and the refusal counts' client
    (``engine.member_refusals.client_of``). Read to the end, so CNs sharing a first word ("Fengning County
    Hospital", "Fengning Zhongyi Hospital") stay two (rv36g LOW 1)."""
    found = _CN.search(peer) if peer else None
    return found.group(1) if found else ""


def sender_institution(facility: str, application: str, peer: str, site: Any) -> str:
    """The institution code for MSH-4.1 ``facility`` and MSH-3.1 ``application`` received from
    ``peer``; ``facility`` itself when nothing maps it (the caller then refuses it as unknown)."""
    institutions = getattr(site, "institutions", None) or {}
    facility = facility.strip()
    if facility in institutions:
        return facility
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    alias = (table.get("facility_aliases") or {}).get(facility) if facility else None
    if alias:
        return str(alias)
    if not facility:
        by_app = (table.get("applications") or {}).get(application.strip())
        if by_app:
            return str(by_app)
    listeners = table.get("listeners") or {}
    if listeners and peer:
        cn = peer_cn(peer)
        if cn and f"tls:{cn}" in listeners:
            return str(listeners[f"tls:{cn}"])
        port = _PORT.search(peer)
        if port and f"mllp:{port.group(1)}" in listeners:
            return str(listeners[f"mllp:{port.group(1)}"])
    return facility


def sender_charset(institution: str, application: str, site: Any) -> str:
    """The character set the site says a sender's bytes are in, whatever its MSH-18 declares
    (``senders.yaml`` ``charsets``); "" when the site says nothing (MSH-18 is honoured).

    Chinese HIS often declare ``8859/1`` (a default of their interface engine) and send GB 18030;
    Latin-1 reads any byte, so the declaration alone cannot be overruled by the bytes. A real
    engine keeps this per sender, as the site's data, beside the sender's other habits: the
    institution code maps to a set (HL7 table 0211 or a codec name), or to a map of its sending
    applications (MSH-3.1) to sets, ``"*"`` for the others."""
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    entry = (table.get("charsets") or {}).get(institution)
    if isinstance(entry, dict):
        entry = entry.get(application.strip(), entry.get("*"))
    return str(entry).strip() if entry else ""
