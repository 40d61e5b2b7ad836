"""An MCP "server" that exits with status 3 at once, writing "boom" to stderr."""

import sys

if __name__ == "__main__":
    sys.stderr.write("boom\n")
    sys.stderr.flush()
    sys.exit(3)
