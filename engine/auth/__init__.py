"""Access control: OAuth2 / SMART on FHIR tokens, the ``Caller`` every request is checked against."""
