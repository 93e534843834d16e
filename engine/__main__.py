from engine.cli import entry

# Guarded: render processes (engine.delivery.render_pool, spawn) import the main module again.
if __name__ == "__main__":
    entry()
