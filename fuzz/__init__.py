"""Fuzz targets of the decoders that read untrusted bytes (issue 12, item 4).

Each module here is one atheris target: ``fuzz_one_input(data)`` checks the decoder's
documented contract on ``data`` (only its documented exceptions escape; round trips hold;
chunking does not change the result) and raises ``AssertionError`` otherwise. The targets
import no atheris: ``python -m fuzz.<target>`` fuzzes (see :mod:`fuzz.harness`), and
``tests/test_fuzz_regressions.py`` replays the seeds and every finding without atheris.
``make fuzz FUZZ_SECONDS=N`` runs them all (:mod:`fuzz.run`). See fuzz/README.md.
"""

TARGETS = ("packet", "message", "handshake", "wsframe", "payload")
"""The target modules, in the order ``make fuzz`` runs them."""
