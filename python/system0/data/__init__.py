"""system0.data."""
