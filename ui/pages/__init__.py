"""One module per page: each builds its view and calls the Api; no logic of its own."""
