"""Tooling around the engine (benchmark loaders): not imported by the engine itself."""
