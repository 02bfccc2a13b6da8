"""system0.core: telemetry, structured logging, configuration and backpressure."""
