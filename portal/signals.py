"""What happened, for whoever listens (the /metrics counters, say), without the code that
makes it happen knowing its listeners. Receivers must be quick and must not raise."""

from blinker import Namespace

_signals = Namespace()

# A reservation ended: sent with outcome="placed" (and nodes=N) or outcome=<refusal code>.
placement_decided = _signals.signal("placement-decided")
