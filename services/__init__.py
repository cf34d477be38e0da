"""The service layer the HTTP API and the web pages share: each rule lives here once, and the
routes of both only translate its results and refusals into their own responses."""
