"""Several datasets in one long-running process: TOML config, the facade, the HTTP API."""
