"""Prometheus metrics of a server (issue 14): one registry per server, ``/metrics`` on
its entry's ``metricsPort``, and the master's ``file_sd`` target file.

- :mod:`.wiring`: :func:`install_metrics`, called by ``build_application``;
- :mod:`.hooks`: request and RPC metrics through the instruments' hooks;
- :mod:`.collectors`: the framework's own counters, read at scrape time;
- :mod:`.runtime`: reactor lag and GC pauses;
- :mod:`.listener`: the component and its twisted.web ``/metrics`` page;
- :mod:`.summary`: the figures a server's stats carry for the live dashboard;
- :mod:`.filesd`: the ``file_sd`` target file;
- :mod:`.settings`: the settings and their defaults.

See "Metrics" in ``docs/operations.md`` for the list of metrics.

Import from the submodules: the master imports only :mod:`.filesd`, without pulling in
prometheus_client's collectors or twisted.web.
"""
