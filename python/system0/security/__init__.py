"""system0.security."""
