"""Domain models shared by workflows, activities, the API and the CLI (pure, sandbox-safe)."""
