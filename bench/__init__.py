"""Benchmarks of pomelo_twisted (``make bench`` runs ``bench/codec.py``); not shipped."""
