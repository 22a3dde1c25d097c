"""Service discovery: the :class:`IServiceDiscovery` interface, the etcd implementation and
the component that runs a discovery inside a server (the master registry lives in
:mod:`pomelo_twisted.cluster.monitor`). See :mod:`.interfaces`."""
