"""The web surfaces: REST API and Gradio UI on one FastAPI app, and `i2v serve`. Only this package imports them."""
