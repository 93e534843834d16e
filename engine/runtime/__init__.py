"""Runtime wiring: settings, the registry, the plan store, worker assembly, the embedded
servers and the client."""
