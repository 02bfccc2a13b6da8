"""system0.utils."""
