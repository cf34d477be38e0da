"""The HTTP API (FastAPI): authenticated commands go to workflows as Updates; reads come from the database."""
