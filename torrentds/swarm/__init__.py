"""One dataset's download and seeding on the engine: order, verification, the loop."""
