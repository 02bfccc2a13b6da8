"""system0.interfaces."""
