"""Pillarbox: a complete, secure, low-maintenance mail server.

The package is layered (see ``tests/test_layering.py``): ``message``, ``mailauth``,
``dns`` and ``config`` at the bottom; ``store``, ``auth``, ``tls`` and friends above
them; the protocol servers above those; ``serve`` and ``ops`` wire everything; ``cli``
is the thin entry point on top.
"""

__version__ = "0.1.0"
