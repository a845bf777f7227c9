"""The `masque` command line: thin modules that parse, call one core function and render."""
