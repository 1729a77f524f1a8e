"""The audit trail: AuditEvents per interaction in a signed, verifiable Merkle-tree log."""
