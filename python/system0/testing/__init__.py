"""system0.testing."""
