"""Video models behind the `Backend` protocol. The only package that imports diffusers."""
