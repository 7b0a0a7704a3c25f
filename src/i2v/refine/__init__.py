"""Prompt intelligence: raw (often Chinese) text + the image -> English prompt and motion tags."""
