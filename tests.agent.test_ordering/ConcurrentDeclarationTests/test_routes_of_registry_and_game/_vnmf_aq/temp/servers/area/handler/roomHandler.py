
from pomelo_twisted.handlers import concurrent

class RoomHandler:
    def __init__(self, app):
        self.app = app

    @concurrent
    def look(self, msg, session):
        return msg

    def move(self, msg, session):
        return msg
