"""Server processes: the Application, its configuration, builders and the twistd entry point."""

from ..gameconfig import GameConfig
from .application import Application

__all__ = ["Application", "GameConfig"]
