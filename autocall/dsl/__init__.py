"""The dialogue language: parse ``.dlg`` text, check it, lower it to the IR the engine runs."""
