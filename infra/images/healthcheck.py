"""Container HEALTHCHECK: exit 0 when http://127.0.0.1:<port><path> answers 2xx, 1 otherwise.

Usage: healthcheck.py PORT_VARIABLE DEFAULT_PORT PATH. The port is read from the service's own
setting (e.g. GATEWAY_PORT) so a changed port does not make a healthy container look dead.
Standard library only: the images carry no curl.
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    port_variable, default_port, path = argv
    port = os.environ.get(port_variable) or default_port
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"{url}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
