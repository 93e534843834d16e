"""lifecycle's engine: the command line, the worker's wiring, email and activities."""
