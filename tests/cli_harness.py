"""What one in-process `vfbot` run (`main(argv)`) said; the `vfbot` fixture (tests/conftest.py)
makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Run", "Vfbot"]


@dataclass
class Run:
    """One `vfbot` invocation: exit code, stdout, stderr and every log line it produced."""

    code: int
    out: str
    err: str
    logs: str

    @property
    def everything(self) -> str:
        return "\n".join((self.out, self.err, self.logs))


Vfbot = Callable[..., Run]
