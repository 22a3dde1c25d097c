"""Structured logs: JSON lines (:mod:`.jsonlog`), levels per namespace and the format
chosen on the command line (:mod:`.beginning`), request ids and the access log
(:mod:`.requestlog`)."""
