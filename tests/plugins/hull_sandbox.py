"""pytest fixtures that route Hull's firehose and REST API to the Hull sandbox (owned by the Hull work)."""
