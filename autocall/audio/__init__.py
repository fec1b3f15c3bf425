"""Audio for Asterisk: TTS rendering (pyttsx3/espeak-ng in a worker process), prompt-file validation, conversion, the sound cache.

Nothing heavy is imported here: ``autocall check`` imports ``probe`` and ``voices`` and must stay fast.
"""
