"""The storage tiers' backends, one module each; every one is a ``segments.Backend``.

Nothing is imported here: MongoDB and BigQuery need their extras (``system0[mongo]``,
``system0[bigquery]``), and the router imports the backend a configuration names.
"""
