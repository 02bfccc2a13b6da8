"""system0.serving."""
