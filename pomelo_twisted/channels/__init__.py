"""Channels: groups of users pushed to as a whole, grouped per frontend, encoded once."""

from .channel import Channel, call_frontends, group_by_frontend
from .service import ChannelService

__all__ = ["Channel", "ChannelService", "call_frontends", "group_by_frontend"]
