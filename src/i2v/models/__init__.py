"""Video backends, one folder per model."""
