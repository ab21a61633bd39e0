"""`ragrouter promote <name> <version>` and `ragrouter rollback <name>`: the champion alias
moved by hand, under the same lock and with the same decision record as the gate's."""

from __future__ import annotations

import argparse


def add_arguments(verbs: argparse._SubParsersAction) -> None:
    promote = verbs.add_parser("promote", help="make a registered version the champion by hand")
    promote.add_argument("name", help="registered model name")
    promote.add_argument("version", help="its version number")
    promote.add_argument("--reason", help="why (recorded on the version)")
    promote.set_defaults(handler=promote_version)
    rollback = verbs.add_parser("rollback", help="the champion back to the previous champion")
    rollback.add_argument("name", help="registered model name")
    rollback.add_argument("--reason", help="why (recorded on the version)")
    rollback.set_defaults(handler=roll_back)


def promote_version(args: argparse.Namespace) -> int:
    from ragrouter.registry.promotion import manual_promote
    from ragrouter.registry.tracking import configure_tracking

    configure_tracking()
    decision = manual_promote(args.name, args.version, args.reason)
    was = f"v{decision.champion_read}" if decision.champion_read else "none"
    print(f"{args.name} v{decision.version} is the champion (was {was}): {decision.reason}")
    return 0


def roll_back(args: argparse.Namespace) -> int:
    from ragrouter.registry.promotion import rollback
    from ragrouter.registry.tracking import configure_tracking

    configure_tracking()
    decision = rollback(args.name, args.reason)
    print(f"{args.name} v{decision.version} is the champion again (was v{decision.champion_read}): {decision.reason}")
    return 0
