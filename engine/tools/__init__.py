"""Tools around the engine: the simulator, the journey graph, the demo, the SMTP sink."""
