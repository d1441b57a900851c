"""``python -m truncback <command>`` and the ``truncback`` script: the command line of :mod:`truncback.cli`.

Ctrl-C while the command is still starting (importing its modules: torch alone takes seconds) ends it
with one line and exit status 130, as it does once the command runs: the handler is installed here,
before any import that takes time, and exits at once (nothing has been written yet; an interrupt raised
as KeyboardInterrupt inside an import can surface as a traceback, even one Python only prints as ignored).
"""

import os
import signal
import sys


def interrupted_while_starting(signum, frame) -> None:
    command = " ".join(["python -m truncback", *sys.argv[1:2]])
    os.write(2, f"{command}: interrupted while starting, before it wrote anything\n".encode())
    os._exit(130)


def main() -> int:
    signal.signal(signal.SIGINT, interrupted_while_starting)
    from truncback.cli import main as command_line

    return command_line()


if __name__ == "__main__":
    sys.exit(main())
