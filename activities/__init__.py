"""Custom activities that rules can ``call``. Every module in this package is imported by
``engine.registry.load_registry``; see docs/activities.md."""
