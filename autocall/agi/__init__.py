"""FastAGI: the AGI protocol (pure), its Twisted connection, and the AGI implementation of the engine's Channel.

``protocol`` has no Twisted and no I/O; ``connection`` adapts it to Twisted;
``channel`` implements ``autocall.engine.channel.Channel`` over a connection.
"""
