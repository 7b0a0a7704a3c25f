"""camera-preview: the camera motion of the refined tags rendered over the still image, without a model."""
