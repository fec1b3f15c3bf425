"""The dialogue engine: one interpreter that runs a compiled dialogue against any Channel."""
