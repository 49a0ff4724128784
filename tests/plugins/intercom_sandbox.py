"""pytest fixtures that route https://api.intercom.io to the Intercom sandbox (owned by the Intercom client work)."""
