"""The discovery contract against both implementations: etcd (in-memory store) and the master."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from pomelo_twisted.discovery.component import discovery_of
from pomelo_twisted.gameconfig import GameConfig

from ..cluster.fakes import write_game
from .contract import DiscoveryContract
from .harness import CHAT_1, CHAT_2, EtcdCluster, MasterCluster


class EtcdDiscoveryContractTests(DiscoveryContract, SynchronousTestCase):
    """EtcdDiscovery on a MemoryKeyValueStore."""

    def setUp(self) -> None:
        self.cluster = EtcdCluster()


class MasterRegistryContractTests(DiscoveryContract, SynchronousTestCase):
    """The master's registry (MonitorComponent.discovery) over a MemoryNetwork."""

    def setUp(self) -> None:
        self.cluster = MasterCluster(GameConfig(write_game(self)))


class DiscoveryOfTests(SynchronousTestCase):
    """discovery_of finds an application's discovery, whichever it is."""

    def test_both_and_none(self) -> None:
        """The etcd component's, the monitor's, and None without one."""
        etcd = EtcdCluster()
        app, discovery = etcd.join(CHAT_1)
        self.assertIs(discovery_of(app.components), discovery)
        master = MasterCluster(GameConfig(write_game(self)))
        app, discovery = master.join(CHAT_2)
        self.assertIs(discovery_of(app.components), discovery)
        self.assertIsNone(discovery_of({}))
