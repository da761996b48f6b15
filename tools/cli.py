"""`recommender COMMAND ...`: the project's command-line tools behind one name.

    recommender import FILE [options]   bulk import (tools.importer)
    recommender stack up|down|ps|logs   the native stack (tools.stack; `make up` picks the mode)
    recommender dead-letters list|requeue|drop   messages the embedder gave up on (tools.dead_letters)
    recommender reembed --model NAME    move a tenant to another embedding model (tools.reembed)
    recommender keys create|list|revoke API keys and tenants (tools.keys)
"""
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "import":
        from tools import importer

        return importer.main(rest)
    if command == "dead-letters":
        from tools import dead_letters

        return dead_letters.main(rest)
    if command == "reembed":
        from tools import reembed

        return reembed.main(rest)
    if command == "keys":
        from tools import keys

        return keys.main(rest)
    if command == "stack":
        from tools import stack

        sys.argv = ["recommender stack", *rest]
        stack.main()
        return 0
    print(__doc__, file=sys.stderr)
    return 0 if command in ("-h", "--help") else 2


if __name__ == "__main__":
    raise SystemExit(main())
