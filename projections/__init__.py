"""Read models built from the event stream, each rebuildable from zero, each in a folder of its own."""
