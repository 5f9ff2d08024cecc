"""Faults to inject from tests: a TCP proxy to cut or freeze, and real bot processes to kill."""

from tests.faults.process import BotProcess
from tests.faults.proxy import TcpProxy

__all__ = ["BotProcess", "TcpProxy"]
