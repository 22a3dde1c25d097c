"""Server processes: the Application, its configuration, builders and the twistd entry point."""

from .application import Application
from .config import GameConfig

__all__ = ["Application", "GameConfig"]
