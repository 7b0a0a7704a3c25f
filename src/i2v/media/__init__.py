"""Images in, videos out: decoding and validating inputs, encoding outputs atomically. Knows nothing of models."""
