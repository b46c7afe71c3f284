"""The dataset side: a folder becomes reproducible WebDataset shards with a manifest."""
