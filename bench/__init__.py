"""``make bench``: the pipeline's performance benchmark against the stock TFX taxi template."""
