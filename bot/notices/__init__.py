"""What one feature tells other people after its own work (leaders, reporters, villagers)."""
