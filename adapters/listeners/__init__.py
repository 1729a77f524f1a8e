"""Network entry points for HL7 v2: the MLLP listener (``mllp``) and ``POST /hl7v2`` (``http``)."""
