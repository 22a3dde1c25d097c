"""The discovery contract against both implementations: etcd (in-memory store) and the master."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.gameconfig import GameConfig

from ..cluster.fakes import write_game
from .contract import DiscoveryContract
from .harness import EtcdCluster, MasterCluster


class EtcdDiscoveryContractTests(DiscoveryContract, SynchronousTestCase):
    """EtcdDiscovery on a MemoryKeyValueStore."""

    def setUp(self) -> None:
        self.cluster = EtcdCluster()


class MasterRegistryContractTests(DiscoveryContract, SynchronousTestCase):
    """The master's registry (MonitorComponent.discovery) over a MemoryNetwork."""

    def setUp(self) -> None:
        self.cluster = MasterCluster(GameConfig(write_game(self)))
