"""Asterisk Manager Interface: the pure protocol (``protocol``), Originate requests and outcomes
(``originate``), and the Twisted client with reconnect, keep-alive and ActionID correlation (``client``).

``autocall.ami.client`` imports Twisted; the other two modules do not.
"""

from autocall.ami.originate import (ChannelTemplate, ChannelTemplateError, OriginateOutcome, OriginateRequest,
                                    OriginateResult, build_originate_request, outcome_for)
from autocall.ami.protocol import (Action, AmiConnection, Banner, ConnectionClosed, Event, EventList, Fields,
                                   LocalProtocolError, NeedData, RemoteProtocolError, Response)

__all__ = [
    "Action", "AmiConnection", "Banner", "ChannelTemplate", "ChannelTemplateError", "ConnectionClosed", "Event",
    "EventList", "Fields", "LocalProtocolError", "NeedData", "OriginateOutcome", "OriginateRequest",
    "OriginateResult", "RemoteProtocolError", "Response", "build_originate_request", "outcome_for",
]
