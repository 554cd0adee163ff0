"""Translation: the Translator API, its backends and line-aligned I/O."""
