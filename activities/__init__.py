"""Every side effect of a project: database writes, documents, money. Each activity is idempotent
under its business key, so Temporal may retry it freely."""
