"""The demo game: a seeded match simulator, a scripted player, and the shipped policy."""
