"""One module per command or command group; app.py composes them."""
