"""Bot and load-test tests."""
