"""Server processes: the twistd entry point (``tap``) and, later, the Application."""
